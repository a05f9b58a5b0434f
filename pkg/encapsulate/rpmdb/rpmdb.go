// Package rpmdb reads the list of installed packages, and the files each one
// owns, from an RPM database in the SQLite format that rpm 4.16 and later
// use (usr/lib/sysimage/rpm/rpmdb.sqlite).
//
// It is pure Go and depends on no SQLite library: it contains a minimal
// read-only reader of the SQLite file format that can scan one rowid table,
// and a parser of the RPM header blobs rpm stores in the Packages table.
// All input is treated as untrusted: malformed files give errors wrapping
// ErrNotSQLite or ErrCorrupt, and the work and memory spent are bounded by
// the size of the input.
//
// Only the main database file is read. rpm keeps its database in WAL mode
// and checkpoints the write-ahead log (rpmdb.sqlite-wal) when it closes the
// database, so in a finished image the log is empty or absent. Transactions
// still in a non-empty log (say, from an interrupted rpm) are not seen: the
// result is the database as of the last checkpoint. ReadFile mentions such a
// log in its errors, and refuses an empty main file whose content can only be
// in the log.
package rpmdb

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

var (
	// ErrNotSQLite is returned (wrapped) for input that is not an SQLite
	// database file.
	ErrNotSQLite = errors.New("not an sqlite database")
	// ErrCorrupt is returned (wrapped) for a malformed SQLite file or RPM
	// header, or a database without a Packages table.
	ErrCorrupt = errors.New("corrupt rpm database")
)

// packagesTable is the table rpm's sqlite backend keeps package headers in:
// CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL).
const packagesTable = "Packages"

// gpgPubkeyName is the name of the pseudo packages rpm --import creates for
// trusted OpenPGP keys; they own no files.
const gpgPubkeyName = "gpg-pubkey"

// Package is one installed RPM package.
type Package struct {
	Name, Version, Release, Arch, SourceRPM string
	// Epoch is 0 if the package has none.
	Epoch int
	// BuildTime is when the package was built, in unix seconds.
	BuildTime int64
	// Files are the absolute paths of the package's files, directories and
	// symlinks, in the order rpm lists them.
	Files []string
	// ChangelogTimes are the dates of the changelog entries in unix
	// seconds, as stored (usually newest first).
	ChangelogTimes []int64
}

// NEVRA returns the package's name-[epoch:]version-release.arch. The epoch
// is left out when it is 0, and ".arch" when the package has no
// architecture.
func (p *Package) NEVRA() string {
	s := p.Name + "-"
	if p.Epoch != 0 {
		s += strconv.Itoa(p.Epoch) + ":"
	}
	s += p.Version + "-" + p.Release
	if p.Arch != "" {
		s += "." + p.Arch
	}
	return s
}

// ReadPackages reads every package from an rpmdb.sqlite file's bytes, in the
// order of their header numbers. The gpg-pubkey pseudo packages are left
// out. size is the size of the file.
func ReadPackages(r io.ReaderAt, size int64) ([]Package, error) {
	var pkgs []Package
	err := scanHeaders(r, size, nil, func(hnum int64, blob []byte) error {
		h, err := parseHeader(blob)
		if err != nil {
			return fmt.Errorf("package %d: %w", hnum, err)
		}
		// Check the name first: gpg-pubkey headers are skipped unparsed.
		if name, _, err := h.stringValue(tagName); err == nil && name == gpgPubkeyName {
			return nil
		}
		p, err := packageFromHeader(h)
		if err != nil {
			return fmt.Errorf("package %d: %w", hnum, err)
		}
		pkgs = append(pkgs, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}

// scanHeaders calls fn with the header number and header blob of every row
// of the Packages table. The blob is only valid during the call. If stats is
// not nil, it counts the pages of the Packages table.
func scanHeaders(r io.ReaderAt, size int64, stats *pageStats, fn func(hnum int64, blob []byte) error) error {
	db, err := openSQLite(r, size)
	if err != nil {
		return err
	}
	root, err := db.tableRoot(packagesTable)
	if err != nil {
		return err
	}
	db.stats = stats
	return db.scanTable(root, func(rowid int64, payload []byte) error {
		// hnum is the rowid (its column holds NULL); blob is column 1.
		cols, err := parseRecord(payload, 2)
		if err != nil {
			return fmt.Errorf("package %d: %w", rowid, err)
		}
		if cols[1].kind != valBlob {
			return fmt.Errorf("package %d: %w", rowid, corruptf("header is not a blob"))
		}
		return fn(rowid, cols[1].bytes)
	})
}

// ReadFile reads every package from the rpmdb.sqlite file at path, like
// ReadPackages. It does not read the write-ahead log next to it (see the
// package documentation), but refuses an empty database file whose content
// is only in the log.
func ReadFile(path string) ([]Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	wal := path + "-wal"
	walSize := int64(0)
	if wi, err := os.Stat(wal); err == nil && wi.Mode().IsRegular() {
		walSize = wi.Size()
	}
	if fi.Size() == 0 && walSize > 0 {
		return nil, fmt.Errorf("read %s: %w: database is only in the write-ahead log %s, which is not read", path, ErrNotSQLite, wal)
	}
	pkgs, err := ReadPackages(f, fi.Size())
	if err != nil {
		if walSize > 0 {
			return nil, fmt.Errorf("read %s (not reading its %d-byte write-ahead log): %w", path, walSize, err)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return pkgs, nil
}
