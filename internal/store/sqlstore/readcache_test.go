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

// getEach looks up a page at once: hits, refusals and absences counted,
// a hit in the cold half moved back to the hot one, nothing for another
// Generation.
func TestReadCacheGetEach(t *testing.T) {
	f := &fakeGen{g: Generation{Change: 1}, ok: true}
	c := newReadCache(f.get, 1<<20)
	g, _ := c.generation()
	c.put(g, version("a", 1, `{"a":1}`))
	c.put(g, version("b", 2, `{"b":2}`))
	c.cold, c.hot, c.hotBytes = c.hot, map[cacheKey]*store.Version{}, 0 // a and b are cold now
	c.put(g, version("c", 1, `{"c":1}`))
	ids := []string{"a", "b", "c", "d"}
	got := make([]string, len(ids))
	c.getEach(g, "Patient", len(ids), func(i int) string { return ids[i] }, func(i int, v *store.Version) bool {
		if v.ID == "b" {
			return false // say, not the version the page names
		}
		got[i] = string(v.Body)
		return true
	})
	if want := []string{`{"a":1}`, "", `{"c":1}`, ""}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bodies %q, want %q", got, want)
	}
	if st := (&DB{cache: c}).ReadCacheStats(); st.Hits != 2 || st.Misses != 2 {
		t.Fatalf("stats %+v, want 2 hits and 2 misses", st)
	}
	if c.hot[cacheKey{"Patient", "a"}] == nil || c.hot[cacheKey{"Patient", "b"}] != nil {
		t.Fatal("the cold hit a was not moved back to the hot half, or the refused b was")
	}
	used := 0
	c.getEach(Generation{Change: 2}, "Patient", len(ids), func(i int) string { return ids[i] }, func(int, *store.Version) bool {
		used++
		return true
	})
	if used != 0 {
		t.Fatalf("another Generation: %d versions used", used)
	}
}

// A page of 51 versions from the cache, every core at it: one get each
// (a copy and a lock each) against getEach.
func BenchmarkReadCachePage(b *testing.B) {
	f := &fakeGen{g: Generation{Change: 1}, ok: true}
	c := newReadCache(f.get, 64<<20)
	g, _ := c.generation()
	ids := make([]string, 51)
	for i := range ids {
		ids[i] = fmt.Sprintf("obs-%d", i)
		c.put(g, version(ids[i], 1, `{"resourceType":"Patient"}`))
	}
	b.Run("get", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				for _, id := range ids {
					if c.get(g, "Patient", id) == nil {
						b.Fatal("miss")
					}
				}
			}
		})
	})
	b.Run("getEach", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := 0
				c.getEach(g, "Patient", len(ids), func(i int) string { return ids[i] }, func(int, *store.Version) bool { n++; return true })
				if n != len(ids) {
					b.Fatal("miss")
				}
			}
		})
	})
}
