package sqlstore

import (
	"sync"
	"sync/atomic"

	"smartfhir/internal/store"
)

// Generation identifies the committed state of a database: it changes with
// every commit by any connection of any process, and two equal
// Generations mean nothing was committed between them. Change orders
// Generations; the rest of the value tells apart states Change alone
// cannot (a log that was restarted).
type Generation struct {
	Change uint32
	State  [11]uint32
}

// Generationer is a Driver that can tell, without a query, whether the
// database changed: SQLite's write-ahead log keeps a header in memory
// shared by every process that has the file open, and every commit
// rewrites it. DB.Read serves repeated reads from memory while the
// Generation stays the same (Config.ReadCacheBytes).
type Generationer interface {
	// Generation returns the current Generation; ok is false while a
	// commit is rewriting it, or when it cannot be read at all.
	Generation() (g Generation, ok bool)
}

// readCache holds current versions read by DB.Read and DB.Search, valid for one
// Generation: the first read that sees a newer one empties it. It keeps two
// halves (hot and cold) and drops the cold one when the hot one fills half
// the budget; a hit in the cold half moves the version back to the hot one.
type readCache struct {
	gen    func() (Generation, bool)
	budget int // bytes for both halves

	mu        sync.RWMutex
	cur       Generation
	hot, cold map[cacheKey]*store.Version
	hotBytes  int

	hits, misses atomic.Int64
}

type cacheKey struct{ typ, id string }

// cacheEntryOverhead is what an entry costs beside its body: the key, the
// Version and the maps' share, roughly.
const cacheEntryOverhead = 160

// newReadCache returns a cache of budget bytes valid for the Generation gen
// reports. Without gen it never empties: that serves versions looked up by
// their version id (search pages), which never change.
func newReadCache(gen func() (Generation, bool), budget int) *readCache {
	return &readCache{gen: gen, budget: budget, hot: map[cacheKey]*store.Version{}}
}

// generation reads the database's Generation and moves the cache to it
// when it is newer, dropping everything cached before. ok is false when
// the cache must be left alone: the Generation cannot be read, or it is
// older than the cache's (this reader looked before a commit another saw).
func (c *readCache) generation() (g Generation, ok bool) {
	if c.gen == nil {
		return Generation{}, true
	}
	g, ok = c.gen()
	if !ok {
		return g, false
	}
	c.mu.RLock()
	cur := c.cur
	c.mu.RUnlock()
	if g == cur {
		return g, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g == c.cur {
		return g, true
	}
	if int32(g.Change-c.cur.Change) < 0 {
		return g, false
	}
	c.cur = g
	c.hot, c.cold, c.hotBytes = map[cacheKey]*store.Version{}, nil, 0
	return g, true
}

// get returns a copy of the cached version of typ/id if it was read in
// Generation g, which is the cache's.
func (c *readCache) get(g Generation, typ, id string) *store.Version {
	k := cacheKey{typ, id}
	c.mu.RLock()
	if g != c.cur {
		c.mu.RUnlock()
		return nil
	}
	v, hot := c.hot[k]
	if v == nil {
		v = c.cold[k]
	}
	c.mu.RUnlock()
	if v == nil {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	if !hot {
		c.put(g, v)
	}
	cp := *v
	return &cp
}

// getEach looks up n versions of type typ, the i-th with id id(i), under
// one read lock: a search page's, without a copy of each. use(i, v) takes
// what it needs of the cached version and reports whether it could use it
// (a lookup it refuses counts as a miss). v must not be changed.
func (c *readCache) getEach(g Generation, typ string, n int, id func(i int) string, use func(i int, v *store.Version) bool) {
	var cold []*store.Version
	hits := 0
	c.mu.RLock()
	if g == c.cur {
		for i := range n {
			k := cacheKey{typ, id(i)}
			v, hot := c.hot[k]
			if v == nil {
				v = c.cold[k]
			}
			if v == nil || !use(i, v) {
				continue
			}
			hits++
			if !hot {
				cold = append(cold, v)
			}
		}
	}
	c.mu.RUnlock()
	c.hits.Add(int64(hits))
	c.misses.Add(int64(n - hits))
	for _, v := range cold {
		c.put(g, v) // back to the hot half, as get does
	}
}

// entrySize is what caching v counts against the budget.
func entrySize(v *store.Version) int {
	return len(v.Body) + len(v.Type) + len(v.ID) + cacheEntryOverhead
}

// put caches v, read in Generation g (looked at before the read began).
// A version read while a commit was under way may be newer than g; it is
// only ever served while the Generation is still g, which it no longer is.
func (c *readCache) put(g Generation, v *store.Version) {
	size := entrySize(v)
	if size > c.budget/8 {
		return
	}
	cp := *v
	c.mu.Lock()
	defer c.mu.Unlock()
	if g != c.cur {
		return
	}
	if c.hotBytes+size > c.budget/2 {
		c.cold, c.hot, c.hotBytes = c.hot, map[cacheKey]*store.Version{}, 0
	}
	k := cacheKey{v.Type, v.ID}
	if old, ok := c.hot[k]; ok {
		if old.VersionID == v.VersionID {
			return
		}
		c.hotBytes -= entrySize(old)
	}
	c.hot[k] = &cp
	c.hotBytes += size
}

// ReadCacheStats counts DB.Read's lookups in its cache since the store was
// opened (both zero without one).
type ReadCacheStats struct{ Hits, Misses int64 }

// ReadCacheStats reports the hits and misses of the read cache and of the
// search pages' cache together.
func (db *DB) ReadCacheStats() ReadCacheStats {
	var st ReadCacheStats
	for _, c := range []*readCache{db.cache, db.pages} {
		if c != nil {
			st.Hits += c.hits.Load()
			st.Misses += c.misses.Load()
		}
	}
	return st
}
