package sqlite_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

func openCached(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	return openMigrated(t, path, sqlstore.Config{ReadCacheBytes: 1 << 20})
}

// The conformance suite once more, every read by id going through the
// cache.
func TestConformanceWithReadCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openCached(t, filepath.Join(t.TempDir(), "db", "smartfhir.db"))
	})
}

func putPatient(t testing.TB, db *sqlstore.DB, vid int64, gender string) {
	t.Helper()
	method := "PUT"
	if vid == 1 {
		method = "POST"
	}
	err := db.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Patient", ID: "p", VersionID: vid, Method: method,
			Body: []byte(`{"resourceType":"Patient","id":"p","gender":"` + gender + `"}`)})
	})
	if err != nil {
		t.Fatalf("Put version %d: %v", vid, err)
	}
}

func readPatient(t testing.TB, db *sqlstore.DB) *store.Version {
	t.Helper()
	v, err := db.Read(context.Background(), "Patient", "p")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return v
}

// writerEnv names the database a child process of this test writes to.
const writerEnv = "SMARTFHIR_TEST_READ_CACHE_WRITER"

// TestReadCacheSeesOtherProcesses reads a resource until it is cached, lets
// another process (this test binary, run again) update it, and reads the
// new version at once: `smartfhir import` writing beside a server.
func TestReadCacheSeesOtherProcesses(t *testing.T) {
	if path := os.Getenv(writerEnv); path != "" {
		db := open(t, path)
		defer db.Close()
		putPatient(t, db, 2, "female")
		return
	}
	path := filepath.Join(t.TempDir(), "smartfhir.db")
	db := openCached(t, path)
	defer db.Close()
	putPatient(t, db, 1, "male")
	readPatient(t, db)
	before := db.ReadCacheStats()
	if v := readPatient(t, db); v.VersionID != 1 {
		t.Fatalf("second read: version %d", v.VersionID)
	}
	if st := db.ReadCacheStats(); st.Hits != before.Hits+1 {
		t.Fatalf("second read of an unchanged database: stats %+v after %+v, want one more hit", st, before)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestReadCacheSeesOtherProcesses$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer process: %v\n%s", err, out)
	}
	v := readPatient(t, db)
	if v.VersionID != 2 || string(v.Body) != `{"resourceType":"Patient","id":"p","gender":"female"}` {
		t.Fatalf("after another process's update: version %d, %s", v.VersionID, v.Body)
	}
	// And this process's own writes.
	putPatient(t, db, 3, "other")
	if v := readPatient(t, db); v.VersionID != 3 {
		t.Fatalf("after this process's update: version %d", v.VersionID)
	}
	if v := readPatient(t, db); v.VersionID != 3 {
		t.Fatalf("cached after the update: version %d", v.VersionID)
	}
	// A deletion is seen too.
	if err := db.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Patient", ID: "p", VersionID: 4, Method: "DELETE", Deleted: true})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read(context.Background(), "Patient", "p"); err == nil {
		t.Fatal("read after delete: no error")
	}
}

// A write to the audit log, in its own file, leaves the database's
// generation alone: audited reads keep their cache.
func TestReadCacheSurvivesAuditWrites(t *testing.T) {
	db := openCached(t, filepath.Join(t.TempDir(), "smartfhir.db"))
	defer db.Close()
	putPatient(t, db, 1, "male")
	readPatient(t, db)
	if err := db.Audit().Append(context.Background(), []audit.Event{{Time: time.Now(), Interaction: "read", Type: "Patient",
		Resources: []string{"Patient/p"}, Patients: []string{"p"}, Status: 200}}); err != nil {
		t.Fatalf("audit append: %v", err)
	}
	before := db.ReadCacheStats()
	readPatient(t, db)
	if st := db.ReadCacheStats(); st.Hits != before.Hits+1 {
		t.Fatalf("read after an audit write: stats %+v after %+v, want a hit", st, before)
	}
}

// TestReadCacheNeverReadsBehindACommit updates a resource over and over
// while readers read it: a read that begins after a commit returned must
// see that version or a newer one, never an older one from the cache.
func TestReadCacheNeverReadsBehindACommit(t *testing.T) {
	db := openCached(t, filepath.Join(t.TempDir(), "smartfhir.db"))
	defer db.Close()
	putPatient(t, db, 1, "male")
	const updates = 150
	var committed atomic.Int64
	committed.Store(1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				want := committed.Load()
				v, err := db.Read(context.Background(), "Patient", "p")
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				if v.VersionID < want {
					t.Errorf("read version %d after version %d was committed", v.VersionID, want)
					return
				}
			}
		})
	}
	for vid := int64(2); vid <= updates; vid++ {
		putPatient(t, db, vid, "female")
		committed.Store(vid)
	}
	close(done)
	wg.Wait()
	if st := db.ReadCacheStats(); st.Hits == 0 {
		t.Errorf("no read was answered from the cache (%+v): the test did not exercise it", st)
	}
}

// The search suite once more, every page's bodies going through the cache.
func TestSearchConformanceWithReadCache(t *testing.T) {
	storetest.RunSearch(t, func(t *testing.T, reg *search.Registry) store.Store {
		return openMigrated(t, filepath.Join(t.TempDir(), "s.db"), sqlstore.Config{Search: reg, ReadCacheBytes: 1 << 20})
	})
}

// A page's bodies come from the read cache while the database is
// unchanged, and a new version is read, not the cached one, once it is.
func TestSearchBodiesFromReadCache(t *testing.T) {
	ctx := context.Background()
	reg, err := search.NewRegistry(search.Config{Base: storetest.SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	db := openMigrated(t, filepath.Join(t.TempDir(), "s.db"), sqlstore.Config{Search: reg, ReadCacheBytes: 1 << 20})
	defer db.Close()
	put := func(id string, vid int64, body string) {
		t.Helper()
		err := db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: id, VersionID: vid, Method: "PUT", Body: []byte(body)})
		})
		if err != nil {
			t.Fatalf("Put %s/%d: %v", id, vid, err)
		}
	}
	q, _, err := reg.Parse("Patient", map[string][]string{"gender": {"male"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 10
	page := func() map[string]string {
		t.Helper()
		res, err := db.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		got := map[string]string{}
		for _, v := range res.Matches {
			if v.Method != "PUT" {
				t.Errorf("%s: method %q", v.ID, v.Method)
			}
			got[fmt.Sprintf("%s/%d", v.ID, v.VersionID)] = string(v.Body)
		}
		return got
	}
	a1 := `{"resourceType":"Patient","id":"a","gender":"male"}`
	b1 := `{"resourceType":"Patient","id":"b","gender":"male","name":[{"family":"B"}]}`
	put("a", 1, a1)
	put("b", 1, b1)
	put("c", 1, `{"resourceType":"Patient","id":"c","gender":"female"}`)
	want := map[string]string{"a/1": a1, "b/1": b1}
	if got := page(); !maps.Equal(got, want) {
		t.Fatalf("first page: %v, want %v", got, want)
	}
	before := db.ReadCacheStats()
	if got := page(); !maps.Equal(got, want) {
		t.Fatalf("second page: %v, want %v", got, want)
	}
	if st := db.ReadCacheStats(); st.Hits != before.Hits+2 || st.Misses != before.Misses {
		t.Fatalf("second page of an unchanged database: stats %+v after %+v, want two more hits", st, before)
	}
	// An update: the page names the new version, read from the database;
	// the unchanged b is still served from memory (a commit does not make a
	// version wrong).
	a2 := `{"resourceType":"Patient","id":"a","gender":"male","name":[{"family":"A"}]}`
	put("a", 2, a2)
	want = map[string]string{"a/2": a2, "b/1": b1}
	before = db.ReadCacheStats()
	if got := page(); !maps.Equal(got, want) {
		t.Fatalf("page after an update: %v, want %v", got, want)
	}
	if st := db.ReadCacheStats(); st.Hits != before.Hits+1 || st.Misses != before.Misses+1 {
		t.Fatalf("page after an update: stats %+v after %+v, want a hit (b) and a miss (a)", st, before)
	}
	before = db.ReadCacheStats()
	if got := page(); !maps.Equal(got, want) {
		t.Fatalf("page after an update, again: %v, want %v", got, want)
	}
	if st := db.ReadCacheStats(); st.Hits != before.Hits+2 {
		t.Fatalf("page after an update, again: stats %+v after %+v, want two hits", st, before)
	}
}
