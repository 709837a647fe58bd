package sqlstore

import (
	"bytes"
	"fmt"
	"testing"

	"smartfhir/internal/store"
)

// fakeGen is a database's Generation under the test's control.
type fakeGen struct {
	g  Generation
	ok bool
}

func (f *fakeGen) get() (Generation, bool) { return f.g, f.ok }

func version(id string, vid int64, body string) *store.Version {
	return &store.Version{Type: "Patient", ID: id, VersionID: vid, Body: []byte(body)}
}

func TestReadCacheServesOneGeneration(t *testing.T) {
	f := &fakeGen{g: Generation{Change: 7}, ok: true}
	c := newReadCache(f.get, 1<<20)

	g, ok := c.generation()
	if !ok {
		t.Fatal("generation: not usable")
	}
	if v := c.get(g, "Patient", "a"); v != nil {
		t.Fatalf("empty cache: got %+v", v)
	}
	c.put(g, version("a", 1, `{"v":1}`))
	v := c.get(g, "Patient", "a")
	if v == nil || v.VersionID != 1 {
		t.Fatalf("after put: got %+v, want version 1", v)
	}
	// What a caller does to its copy does not reach the cache.
	v.VersionID, v.ID = 99, "changed"
	if v := c.get(g, "Patient", "a"); v == nil || v.VersionID != 1 || v.ID != "a" {
		t.Fatalf("after changing a copy: got %+v", v)
	}
	if v := c.get(g, "Observation", "a"); v != nil {
		t.Fatalf("other type: got %+v", v)
	}

	// A commit: the next look at the Generation empties the cache.
	f.g = Generation{Change: 8}
	g2, ok := c.generation()
	if !ok || g2 == g {
		t.Fatalf("generation after a commit: %v, %v", g2, ok)
	}
	if v := c.get(g2, "Patient", "a"); v != nil {
		t.Fatalf("after a commit: got %+v, want nothing", v)
	}
	// A reader that looked before the commit neither reads nor fills it.
	if v := c.get(g, "Patient", "a"); v != nil {
		t.Fatalf("old generation: got %+v", v)
	}
	c.put(g, version("a", 1, `{"v":1}`))
	if v := c.get(g2, "Patient", "a"); v != nil {
		t.Fatalf("put under an old generation was kept: %+v", v)
	}
	// Nor does an older Generation seen late move the cache back.
	f.g = Generation{Change: 7}
	if _, ok := c.generation(); ok {
		t.Fatal("an older generation was accepted")
	}
	// A header under rewrite is not usable.
	f.g, f.ok = Generation{Change: 9}, false
	if _, ok := c.generation(); ok {
		t.Fatal("an unreadable generation was accepted")
	}
	// Same Change, different state (a restarted log): a new generation.
	f.g, f.ok = Generation{Change: 8, State: [11]uint32{1}}, true
	if g3, ok := c.generation(); !ok || g3 == g2 {
		t.Fatalf("restarted log: %v, %v", g3, ok)
	}
	if st := (&DB{cache: c}).ReadCacheStats(); st.Hits != 2 || st.Misses != 4 {
		t.Fatalf("stats: %+v, want 2 hits and 4 misses", st)
	}
}

func TestReadCacheStaysInBudget(t *testing.T) {
	f := &fakeGen{ok: true}
	const budget = 64 << 10
	c := newReadCache(f.get, budget)
	g, _ := c.generation()
	body := bytes.Repeat([]byte("x"), 1000)
	for i := range 1000 {
		c.put(g, &store.Version{Type: "Patient", ID: fmt.Sprint(i), VersionID: 1, Body: body})
		// The most recent ones are always there.
		if c.get(g, "Patient", fmt.Sprint(i)) == nil {
			t.Fatalf("entry %d missing right after put", i)
		}
	}
	held := 0
	for _, m := range []map[cacheKey]*store.Version{c.hot, c.cold} {
		for _, v := range m {
			held += len(v.Body) + len(v.Type) + len(v.ID) + cacheEntryOverhead
		}
	}
	if held > budget {
		t.Fatalf("cache holds %d bytes, budget %d", held, budget)
	}
	if held < budget/4 {
		t.Fatalf("cache holds %d bytes of a %d budget: it drops too much", held, budget)
	}
	// An entry bigger than an eighth of the budget is not kept.
	c.put(g, &store.Version{Type: "Binary", ID: "big", Body: make([]byte, budget/4)})
	if c.get(g, "Binary", "big") != nil {
		t.Fatal("an oversized entry was cached")
	}
}
