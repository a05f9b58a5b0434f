package encapsulate

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// The ostree-container tar format, version 1 (spec §3.2): a hardlinked checkout of the commit
// plus the objects it is made of, in a repository that claims mode bare-split-xattrs.
const (
	repoPrefix = "sysroot/ostree/repo/"
	repoConfig = "[core]\nrepo_version=1\nmode=bare-split-xattrs\n"
)

var epoch = time.Unix(0, 0)

// tarWriter writes entries the way ostree-ext does: GNU headers with mtime 0 and no user or
// group names, and a PAX header only for entries that carry xattrs.
type tarWriter struct {
	tw *tar.Writer
	// xattrBlobs records the xattr objects already written to this layer.
	xattrBlobs map[string]bool
}

func newTarWriter(w io.Writer) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), xattrBlobs: map[string]bool{}}
}

func (t *tarWriter) close() error { return t.tw.Close() }

// paxXattrs are the SCHILY.xattr records of x, without security.selinux (which a host relabels).
func paxXattrs(x ostree.Xattrs) map[string]string {
	var recs map[string]string
	for _, a := range x {
		if a.Name == "security.selinux" {
			continue
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs["SCHILY.xattr."+a.Name] = string(a.Value)
	}
	return recs
}

func (t *tarWriter) write(h *tar.Header, xattrs ostree.Xattrs, content io.Reader) error {
	h.ModTime = epoch
	h.Format = tar.FormatGNU
	if recs := paxXattrs(xattrs); recs != nil {
		h.Format = tar.FormatPAX
		h.PAXRecords = recs
	}
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("tar entry %s: %w", h.Name, err)
	}
	if content != nil {
		n, err := io.Copy(t.tw, content)
		if err != nil {
			return fmt.Errorf("tar entry %s: %w", h.Name, err)
		}
		if n != h.Size {
			return fmt.Errorf("tar entry %s: %d bytes of content, want %d", h.Name, n, h.Size)
		}
	}
	return nil
}

func (t *tarWriter) dir(name string, uid, gid, mode uint32) error {
	return t.write(&tar.Header{Typeflag: tar.TypeDir, Name: name, Uid: int(uid), Gid: int(gid), Mode: int64(mode & 0o7777)}, nil, nil)
}

func (t *tarWriter) file(name string, data []byte) error {
	return t.write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}, nil, strings.NewReader(string(data)))
}

// skeleton writes the repository directories and config every layer carries.
func (t *tarWriter) skeleton() error {
	for _, d := range []string{"sysroot", "sysroot/ostree", "sysroot/ostree/repo", "sysroot/ostree/repo/objects"} {
		if err := t.dir(d, 0, 0, 0o755); err != nil {
			return err
		}
	}
	for i := 0; i < 256; i++ {
		if err := t.dir(fmt.Sprintf("%sobjects/%02x", repoPrefix, i), 0, 0, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"extensions", "refs", "refs/heads", "refs/mirrors", "refs/remotes", "state", "tmp", "tmp/cache"} {
		if err := t.dir(repoPrefix+d, 0, 0, 0o755); err != nil {
			return err
		}
	}
	return t.file(repoPrefix+"config", []byte(repoConfig))
}

func objectTarPath(n ostree.ObjectName) string {
	s := n.Checksum.String()
	return repoPrefix + "objects/" + s[:2] + "/" + s[2:] + "." + n.Type.String()
}

// checkoutPath maps a commit path ("/usr/etc/passwd") to its place in the tar ("etc/passwd").
func checkoutPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if p == "usr/etc" || strings.HasPrefix(p, "usr/etc/") {
		return p[len("usr/"):]
	}
	return p
}

func (t *tarWriter) metadataObject(repo *ostree.Repo, n ostree.ObjectName) error {
	data, err := repo.ReadMetadataObject(n)
	if err != nil {
		return err
	}
	return t.file(objectTarPath(n), data)
}

// contentObject writes a content object and its checkout paths (spec §3.2): the xattrs blob
// (once per layer), the .file-xattrs-link hardlink to it, the object with its xattrs, then a
// hardlink to the object at each path, except that empty regular files are written as such.
func (t *tarWriter) contentObject(repo *ostree.Repo, c ostree.Checksum, paths []string) error {
	obj, err := repo.OpenContent(c)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := obj.Header
	blob := ostree.MarshalXattrs(h.Xattrs)
	sum := sha256.Sum256(blob)
	blobName := hex.EncodeToString(sum[:])
	blobPath := repoPrefix + "objects/" + blobName[:2] + "/" + blobName[2:] + ".file-xattrs"
	if !t.xattrBlobs[blobName] {
		t.xattrBlobs[blobName] = true
		if err := t.file(blobPath, blob); err != nil {
			return err
		}
	}
	if err := t.write(&tar.Header{Typeflag: tar.TypeLink, Name: objectTarPath(ostree.ObjectName{Checksum: c, Type: ostree.ObjectFileXattrsLink}), Linkname: blobPath, Mode: 0o644}, nil, nil); err != nil {
		return err
	}
	objPath := objectTarPath(ostree.ObjectName{Checksum: c, Type: ostree.ObjectFile})
	base := tar.Header{Uid: int(h.UID), Gid: int(h.GID), Mode: int64(h.Mode & 0o7777)}
	oh := base
	oh.Name = objPath
	if h.IsSymlink() {
		oh.Typeflag, oh.Linkname = tar.TypeSymlink, h.SymlinkTarget
		err = t.write(&oh, h.Xattrs, nil)
	} else {
		oh.Typeflag, oh.Size = tar.TypeReg, obj.Size
		err = t.write(&oh, h.Xattrs, obj.Content)
	}
	if err != nil {
		return err
	}
	for _, p := range paths {
		ph := base
		ph.Name = checkoutPath(p)
		if !h.IsSymlink() && obj.Size == 0 {
			ph.Typeflag = tar.TypeReg
			if err := t.write(&ph, h.Xattrs, nil); err != nil {
				return err
			}
			continue
		}
		ph.Typeflag, ph.Linkname = tar.TypeLink, objPath
		if err := t.write(&ph, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// writeOstreeLayer writes layer 0 (spec §3.3): the root directory, the repository skeleton, the
// commit (and its detached metadata), every dirtree and dirmeta with the checkout's directories,
// /var/tmp, then the content objects given (those no chunk layer holds).
func writeOstreeLayer(w io.Writer, ix *commitIndex, objects []ostree.Checksum) error {
	t := newTarWriter(w)
	repo := ix.repo
	rootMeta, err := repo.ReadDirMeta(ix.commit.RootMeta)
	if err != nil {
		return err
	}
	if err := t.dir("./", rootMeta.UID, rootMeta.GID, rootMeta.Mode); err != nil {
		return err
	}
	if err := t.skeleton(); err != nil {
		return err
	}
	if err := t.metadataObject(repo, ostree.ObjectName{Checksum: ix.checksum, Type: ostree.ObjectCommit}); err != nil {
		return err
	}
	if ok, err := repo.HasObject(ostree.ObjectName{Checksum: ix.checksum, Type: ostree.ObjectCommitMeta}); err != nil {
		return err
	} else if ok {
		if err := t.metadataObject(repo, ostree.ObjectName{Checksum: ix.checksum, Type: ostree.ObjectCommitMeta}); err != nil {
			return err
		}
	}
	seenMeta := map[ostree.Checksum]bool{ix.commit.RootMeta: true}
	if err := t.metadataObject(repo, ostree.ObjectName{Checksum: ix.commit.RootMeta, Type: ostree.ObjectDirMeta}); err != nil {
		return err
	}
	seenTree := map[ostree.Checksum]bool{}
	var walk func(tree ostree.Checksum, dir string) error
	walk = func(tree ostree.Checksum, dir string) error {
		if !seenTree[tree] {
			seenTree[tree] = true
			if err := t.metadataObject(repo, ostree.ObjectName{Checksum: tree, Type: ostree.ObjectDirTree}); err != nil {
				return err
			}
		}
		dt, err := repo.ReadDirTree(tree)
		if err != nil {
			return err
		}
		for _, d := range dt.Dirs {
			p := dir + "/" + d.Name
			if !seenMeta[d.Meta] {
				seenMeta[d.Meta] = true
				if err := t.metadataObject(repo, ostree.ObjectName{Checksum: d.Meta, Type: ostree.ObjectDirMeta}); err != nil {
					return err
				}
			}
			if p != "/sysroot" {
				m, err := repo.ReadDirMeta(d.Meta)
				if err != nil {
					return err
				}
				if err := t.dir("./"+checkoutPath(p), m.UID, m.GID, m.Mode); err != nil {
					return err
				}
			}
			if err := walk(d.Tree, p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(ix.commit.RootTree, ""); err != nil {
		return err
	}
	if !ix.hasVarTmp {
		if err := t.dir("./var/tmp", 0, 0, 0o1777); err != nil {
			return err
		}
	}
	if err := t.objects(ix, objects); err != nil {
		return err
	}
	return t.close()
}

// writeChunkLayer writes a component layer: the skeleton, then its content objects in checksum
// order, each followed by its checkout paths.
func writeChunkLayer(w io.Writer, ix *commitIndex, objects []ostree.Checksum) error {
	t := newTarWriter(w)
	if err := t.skeleton(); err != nil {
		return err
	}
	if err := t.objects(ix, objects); err != nil {
		return err
	}
	return t.close()
}

func (t *tarWriter) objects(ix *commitIndex, objects []ostree.Checksum) error {
	sorted := append([]ostree.Checksum(nil), objects...)
	sort.Slice(sorted, func(i, j int) bool { return string(sorted[i][:]) < string(sorted[j][:]) })
	for _, c := range sorted {
		o := ix.objects[c]
		if o == nil {
			return fmt.Errorf("object %s is not in commit %s", c, ix.checksum)
		}
		if err := t.contentObject(ix.repo, c, o.paths); err != nil {
			return err
		}
	}
	return nil
}
