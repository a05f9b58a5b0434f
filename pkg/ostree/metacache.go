package ostree

import "sync"

// metaCacheLimit bounds the bytes a Repo keeps in its metadata cache: enough for every dirtree
// and dirmeta of a few operating-system commits (a Debian tree of 12,000 entries has about
// 2 MiB of them).
const metaCacheLimit = 64 << 20

// metaCache keeps the dirtree and dirmeta objects a Repo has read and verified, so that reading
// one again (a checkout reads the same handful of dirmetas for every directory; a prune after a
// checkout walks the trees the checkout read) costs one lstat instead of an open, read and
// checksum. Objects are named by their checksum and never change, so an entry stays right while
// the object is there: Prune forgets what it deletes, and a hit is checked against the disk
// (lstat), so that an object another process deleted reads as missing. Once limit bytes are
// held, nothing more is added. Safe for concurrent use.
type metaCache struct {
	mu    sync.Mutex
	objs  map[ObjectName][]byte
	bytes int
	limit int
}

func newMetaCache(limit int) *metaCache {
	return &metaCache{objs: map[ObjectName][]byte{}, limit: limit}
}

// cacheable says whether objects of type t are kept: dirtrees and dirmetas, read over and over
// by checkouts and walks. Commits are few and read once; their detached metadata is mutable.
func cacheable(t ObjectType) bool { return t == ObjectDirTree || t == ObjectDirMeta }

// get returns the verified bytes of n, or nil. The caller must not modify them.
func (c *metaCache) get(n ObjectName) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.objs[n]
}

// put keeps the verified bytes of n, unless the cache is full.
func (c *metaCache) put(n ObjectName, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.objs[n]; ok || c.bytes+len(data) > c.limit {
		return
	}
	c.objs[n] = data
	c.bytes += len(data)
}

// forget drops n (deleted from the repository).
func (c *metaCache) forget(n ObjectName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if data, ok := c.objs[n]; ok {
		c.bytes -= len(data)
		delete(c.objs, n)
	}
}
