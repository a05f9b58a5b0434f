package ostree

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

const (
	syscallNoFollow = unix.O_NOFOLLOW
	// O_NOATIME saves an inode update per file read; it needs ownership or CAP_FOWNER, and the
	// open is retried without it on EPERM.
	syscallNoAtime = unix.O_NOATIME
)

var errPermNoAtime = fs.ErrPermission

// statInfo is what a commit needs of lstat(2).
type statInfo struct {
	mode, uid, gid uint32
	nlink          uint64
	dev, ino       uint64
	size           int64
}

func lstat(path string) (statInfo, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return statInfo{}, fmt.Errorf("lstat %s: %w", path, err)
	}
	return statInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, nlink: uint64(st.Nlink), dev: uint64(st.Dev), ino: st.Ino, size: st.Size}, nil
}
