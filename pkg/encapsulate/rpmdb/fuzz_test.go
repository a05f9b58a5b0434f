package rpmdb

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadPackages feeds whole database files to ReadPackages. Seeds: the
// checked-in database made by rpm, and a few truncations of it.
func FuzzReadPackages(f *testing.F) {
	data := readTestdata(f)
	f.Add(data)
	f.Add(data[:dbHeaderSize])
	f.Add(data[:len(data)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ReadPackages(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if pkgs != nil {
				t.Fatal("packages returned with an error")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotSQLite) {
				t.Fatalf("error wraps neither ErrCorrupt nor ErrNotSQLite: %v", err)
			}
			return
		}
		for _, p := range pkgs {
			if p.Name == gpgPubkeyName {
				t.Fatal("gpg-pubkey not skipped")
			}
		}
		checkPackages(t, pkgs, len(data))
	})
}

// FuzzParseHeader feeds header blobs to the header parser. Seeds: the
// headers of the checked-in database (including a gpg-pubkey one) and a
// synthetic one with old-style file names.
func FuzzParseHeader(f *testing.F) {
	data := readTestdata(f)
	err := scanHeaders(bytes.NewReader(data), int64(len(data)), nil, func(_ int64, blob []byte) error {
		f.Add(bytes.Clone(blob))
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(buildHeader(strEntry(tagName, "old"), strArrayEntry(tagOldFilenames, "/bin/sh", "/etc/x"),
		int32Entry(tagChangelogTime, 2, 1)))
	f.Fuzz(func(t *testing.T, blob []byte) {
		p, err := parseTestHeader(blob)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		checkPackages(t, []Package{p}, len(blob))
	})
}

// checkPackages checks invariants of packages read from size bytes of
// input: no negative epoch, and output bounded by the input size.
func checkPackages(t *testing.T, pkgs []Package, size int) {
	t.Helper()
	pathBytes := 0
	for _, p := range pkgs {
		if p.Epoch < 0 {
			t.Fatalf("negative epoch %d", p.Epoch)
		}
		for _, f := range p.Files {
			pathBytes += len(f)
		}
		if len(p.ChangelogTimes) > size {
			t.Fatalf("%d changelog times from %d bytes", len(p.ChangelogTimes), size)
		}
	}
	if pathBytes > pathFactor*size {
		t.Fatalf("%d bytes of paths from %d bytes of input", pathBytes, size)
	}
}
