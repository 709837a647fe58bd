package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// Run runs the conformance suite. open returns a fresh, migrated, empty store
// for each subtest; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	fresh := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateThenReadAndVRead", testCreateRead},
		{"BodyIsReturnedByteForByte", testBytes},
		{"UpdatesMakeAVersionChain", testUpdateChain},
		{"DeleteMakesReadGone", testDelete},
		{"CreateAfterDeleteContinuesTheChain", testRecreate},
		{"PutWithWrongVersionConflicts", testWrongVersion},
		{"FailedUnitOfWorkLeavesNothing", testRollback},
		{"NowIsFixedWithinAUnitOfWork", testNow},
		{"HistoryAtEachLevel", testHistoryLevels},
		{"HistorySince", testHistorySince},
		{"HistoryAt", testHistoryAt},
		{"HistoryPagingIsStableUnderWrites", testHistoryPaging},
		{"HistoryRejectsBadQueries", testHistoryInvalid},
		{"ConcurrentReadModifyWriteLosesNoUpdate", testConcurrentCurrent},
		{"ConcurrentOptimisticWritesLoseNoUpdate", testConcurrentOptimistic},
		{"ConcurrentCreatesOfOneResource", testConcurrentCreate},
		{"Ping", func(t *testing.T, s store.Store) {
			if err := s.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

// body is a resource body as the layers above would stamp it.
func body(typ, id string, vid int64, extra string) []byte {
	return fmt.Appendf(nil, `{"resourceType":%q,"id":%q,"meta":{"versionId":"%d"}%s}`, typ, id, vid, extra)
}

// put writes one version in its own unit of work and returns it as stored.
func put(t *testing.T, s store.Store, typ, id string, vid int64, deleted bool) *store.Version {
	t.Helper()
	v := &store.Version{Type: typ, ID: id, VersionID: vid, Deleted: deleted, Method: "PUT"}
	switch {
	case deleted:
		v.Method = "DELETE"
	case vid == 1:
		v.Method = "POST"
	}
	if !deleted {
		v.Body = body(typ, id, vid, "")
	}
	err := s.Transact(context.Background(), func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, v)
	})
	if err != nil {
		t.Fatalf("Put(%s/%s v%d): %v", typ, id, vid, err)
	}
	return v
}

func wantCode(t *testing.T, what string, err error, want fhir.Code) {
	t.Helper()
	if got := fhir.ErrorCode(err); got != want {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, want)
	}
}

func sameVersion(t *testing.T, what string, got, want *store.Version) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got no version, want %s/%s v%d", what, want.Type, want.ID, want.VersionID)
	}
	if got.Type != want.Type || got.ID != want.ID || got.VersionID != want.VersionID ||
		got.Deleted != want.Deleted || got.Method != want.Method || !got.LastUpdated.Equal(want.LastUpdated) ||
		!bytes.Equal(got.Body, want.Body) {
		t.Fatalf("%s: got %s/%s v%d deleted=%v method=%s at %v body %q,\nwant %s/%s v%d deleted=%v method=%s at %v body %q",
			what, got.Type, got.ID, got.VersionID, got.Deleted, got.Method, got.LastUpdated, got.Body,
			want.Type, want.ID, want.VersionID, want.Deleted, want.Method, want.LastUpdated, want.Body)
	}
}

func testCreateRead(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := put(t, s, "Patient", "p1", 1, false)
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	sameVersion(t, "Read", got, want)
	got, err = s.VRead(ctx, "Patient", "p1", 1)
	if err != nil {
		t.Fatalf("VRead: %v", err)
	}
	sameVersion(t, "VRead", got, want)

	for _, tc := range []struct {
		name string
		call func() (*store.Version, error)
	}{
		{"unknown id", func() (*store.Version, error) { return s.Read(ctx, "Patient", "nope") }},
		{"same id, other type", func() (*store.Version, error) { return s.Read(ctx, "Observation", "p1") }},
		{"version never written", func() (*store.Version, error) { return s.VRead(ctx, "Patient", "p1", 2) }},
		{"version of unknown resource", func() (*store.Version, error) { return s.VRead(ctx, "Patient", "nope", 1) }},
	} {
		v, err := tc.call()
		wantCode(t, tc.name, err, fhir.NotFound)
		if v != nil {
			t.Errorf("%s: got version %+v, want none", tc.name, v)
		}
	}
}

func testBytes(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Whitespace, member order, escapes and non-ASCII must survive as they are.
	raw := []byte("{\"resourceType\":\"Patient\",  \"id\":\"b\",\n \"name\":[{\"text\":\"Zo\u00eb \\u00e9 \\\"q\\\"\"}],\"z\":1.50,\"a\":null}")
	v := &store.Version{Type: "Patient", ID: "b", VersionID: 1, Method: "PUT", Body: raw}
	if err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, v) }); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Read(ctx, "Patient", "b")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !bytes.Equal(got.Body, raw) {
		t.Fatalf("Read body: got %q, want %q", got.Body, raw)
	}
}

func testUpdateChain(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []*store.Version
	for vid := int64(1); vid <= 3; vid++ {
		want = append(want, put(t, s, "Observation", "o1", vid, false))
		time.Sleep(2 * time.Millisecond)
	}
	got, err := s.Read(ctx, "Observation", "o1")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	sameVersion(t, "Read", got, want[2])
	for _, w := range want {
		got, err := s.VRead(ctx, "Observation", "o1", w.VersionID)
		if err != nil {
			t.Fatalf("VRead(%d): %v", w.VersionID, err)
		}
		sameVersion(t, fmt.Sprintf("VRead(%d)", w.VersionID), got, w)
	}
	if !want[0].LastUpdated.Before(want[2].LastUpdated) {
		t.Errorf("lastUpdated: got v1 %v, v3 %v, want v1 before v3", want[0].LastUpdated, want[2].LastUpdated)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	v1 := put(t, s, "Patient", "d", 1, false)
	del := put(t, s, "Patient", "d", 2, true)
	got, err := s.Read(ctx, "Patient", "d")
	wantCode(t, "Read of deleted", err, fhir.Gone)
	sameVersion(t, "Read of deleted", got, del)
	if got.Body != nil {
		t.Errorf("Read of deleted: got body %q, want nil", got.Body)
	}
	got, err = s.VRead(ctx, "Patient", "d", 2)
	wantCode(t, "VRead of deletion", err, fhir.Gone)
	sameVersion(t, "VRead of deletion", got, del)
	got, err = s.VRead(ctx, "Patient", "d", 1)
	if err != nil {
		t.Fatalf("VRead(1) after delete: %v", err)
	}
	sameVersion(t, "VRead(1) after delete", got, v1)

	err = s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.Current(ctx, "Patient", "d")
		wantCode(t, "Current of deleted", err, fhir.Gone)
		sameVersion(t, "Current of deleted", got, del)
		return nil
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
}

func testRecreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "Patient", "r", 1, false)
	put(t, s, "Patient", "r", 2, true)
	v3 := put(t, s, "Patient", "r", 3, false)
	got, err := s.Read(ctx, "Patient", "r")
	if err != nil {
		t.Fatalf("Read after re-create: %v", err)
	}
	sameVersion(t, "Read after re-create", got, v3)
}

func testWrongVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "Patient", "w", 1, false)
	put(t, s, "Patient", "w", 2, false)
	for _, tc := range []struct {
		name string
		id   string
		vid  int64
	}{
		{"new resource not starting at 1", "fresh", 2},
		{"create of an existing resource", "w", 1},
		{"same version again", "w", 2},
		{"skipping a version", "w", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &store.Version{Type: "Patient", ID: tc.id, VersionID: tc.vid, Method: "PUT", Body: body("Patient", tc.id, tc.vid, "")}
			err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, v) })
			wantCode(t, "Put", err, fhir.Conflict)
		})
	}
	got, err := s.Read(ctx, "Patient", "w")
	if err != nil || got.VersionID != 2 {
		t.Fatalf("Read after conflicts: got %v, %v, want version 2", got, err)
	}
	_, err = s.Read(ctx, "Patient", "fresh")
	wantCode(t, "Read of resource whose create conflicted", err, fhir.NotFound)
}

func testRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "Patient", "kept", 1, false)
	boom := errors.New("boom")
	err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, v := range []*store.Version{
			{Type: "Patient", ID: "kept", VersionID: 2, Method: "PUT", Body: body("Patient", "kept", 2, "")},
			{Type: "Patient", ID: "gone", VersionID: 1, Method: "POST", Body: body("Patient", "gone", 1, "")},
		} {
			if err := tx.Put(ctx, v); err != nil {
				return err
			}
		}
		// What the unit of work wrote, it sees.
		if cur, err := tx.Current(ctx, "Patient", "gone"); err != nil || cur.VersionID != 1 {
			t.Errorf("Current inside the unit of work: got %v, %v, want version 1", cur, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transact: got %v, want the error fn returned", err)
	}
	_, err = s.Read(ctx, "Patient", "gone")
	wantCode(t, "Read of rolled-back create", err, fhir.NotFound)
	got, err := s.Read(ctx, "Patient", "kept")
	if err != nil || got.VersionID != 1 {
		t.Fatalf("Read of rolled-back update: got %v, %v, want version 1", got, err)
	}
	page, err := s.History(ctx, store.HistoryQuery{Count: 10})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if page.Total != 1 || len(page.Versions) != 1 {
		t.Fatalf("History after rollback: got %d versions (total %d), want 1", len(page.Versions), page.Total)
	}
	// The rolled-back create left no trace that blocks a real one.
	put(t, s, "Patient", "gone", 1, false)
}

func testNow(t *testing.T, s store.Store) {
	ctx := context.Background()
	var first, second time.Time
	a := &store.Version{Type: "Patient", ID: "n1", VersionID: 1, Method: "POST", Body: body("Patient", "n1", 1, "")}
	b := &store.Version{Type: "Patient", ID: "n2", VersionID: 1, Method: "POST", Body: body("Patient", "n2", 1, "")}
	err := s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		first = tx.Now()
		if err := tx.Put(ctx, a); err != nil {
			return err
		}
		time.Sleep(3 * time.Millisecond)
		second = tx.Now()
		return tx.Put(ctx, b)
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if !first.Equal(second) {
		t.Errorf("Now: got %v then %v, want one fixed time", first, second)
	}
	if !first.Equal(first.Truncate(fhir.InstantPrecision)) {
		t.Errorf("Now: got %v, want it truncated to %v", first, fhir.InstantPrecision)
	}
	for _, id := range []string{"n1", "n2"} {
		got, err := s.Read(ctx, "Patient", id)
		if err != nil {
			t.Fatalf("Read(%s): %v", id, err)
		}
		if !got.LastUpdated.Equal(first) {
			t.Errorf("Read(%s).LastUpdated: got %v, want %v", id, got.LastUpdated, first)
		}
	}
}

// ids renders versions as "Type/id/vid" for comparisons.
func ids(vs []*store.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.VersionID)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// history returns every version of q, walking all pages.
func history(t *testing.T, s store.Store, q store.HistoryQuery) (got []string, total int) {
	t.Helper()
	total = -1
	for range 1000 {
		page, err := s.History(context.Background(), q)
		if err != nil {
			t.Fatalf("History(%+v): %v", q, err)
		}
		if total == -1 {
			total = page.Total
		} else if page.Total != total {
			t.Fatalf("History(%+v): total changed between pages from %d to %d", q, total, page.Total)
		}
		got = append(got, ids(page.Versions)...)
		if page.Next == "" {
			return got, total
		}
		if len(page.Versions) != q.Count {
			t.Fatalf("History(%+v): got a short page of %d with a next cursor", q, len(page.Versions))
		}
		q.Cursor = page.Next
	}
	t.Fatalf("History(%+v): paging does not end", q)
	return nil, 0
}

// pause makes the next unit of work get a later instant.
func pause() { time.Sleep(2 * fhir.InstantPrecision) }

func testHistoryLevels(t *testing.T, s store.Store) {
	put(t, s, "Patient", "a", 1, false)
	put(t, s, "Observation", "a", 1, false)
	put(t, s, "Patient", "b", 1, false)
	put(t, s, "Patient", "a", 2, false)
	del := put(t, s, "Patient", "a", 3, true)
	for _, tc := range []struct {
		name string
		q    store.HistoryQuery
		want []string
	}{
		{"instance", store.HistoryQuery{Type: "Patient", ID: "a"}, []string{"Patient/a/3", "Patient/a/2", "Patient/a/1"}},
		{"type", store.HistoryQuery{Type: "Patient"}, []string{"Patient/a/3", "Patient/a/2", "Patient/b/1", "Patient/a/1"}},
		{"type with no versions", store.HistoryQuery{Type: "Encounter"}, nil},
		{"system", store.HistoryQuery{}, []string{"Patient/a/3", "Patient/a/2", "Patient/b/1", "Observation/a/1", "Patient/a/1"}},
	} {
		for _, count := range []int{1, 2, 100} {
			t.Run(fmt.Sprintf("%s count %d", tc.name, count), func(t *testing.T) {
				q := tc.q
				q.Count = count
				got, total := history(t, s, q)
				if !equal(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
				if total != len(tc.want) {
					t.Errorf("Total: got %d, want %d", total, len(tc.want))
				}
			})
		}
	}
	page, err := s.History(context.Background(), store.HistoryQuery{Type: "Patient", ID: "a", Count: 1})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	sameVersion(t, "deletion in history", page.Versions[0], del)

	_, err = s.History(context.Background(), store.HistoryQuery{Type: "Patient", ID: "never", Count: 10})
	wantCode(t, "instance history of unknown resource", err, fhir.NotFound)
}

func testHistorySince(t *testing.T, s store.Store) {
	put(t, s, "Patient", "a", 1, false)
	pause()
	b := put(t, s, "Patient", "b", 1, false)
	pause()
	a2 := put(t, s, "Patient", "a", 2, false)
	for _, tc := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"at a write", b.LastUpdated, []string{"Patient/a/2", "Patient/b/1"}},
		{"just after a write", b.LastUpdated.Add(time.Nanosecond), []string{"Patient/a/2"}},
		{"after everything", a2.LastUpdated.Add(time.Millisecond), nil},
		{"before everything", b.LastUpdated.Add(-time.Hour), []string{"Patient/a/2", "Patient/b/1", "Patient/a/1"}},
	} {
		for _, q := range []store.HistoryQuery{{}, {Type: "Patient"}} {
			t.Run(fmt.Sprintf("%s type %q", tc.name, q.Type), func(t *testing.T) {
				q.Since, q.Count = tc.since, 2
				got, total := history(t, s, q)
				if !equal(got, tc.want) || total != len(tc.want) {
					t.Errorf("got %v (total %d), want %v", got, total, tc.want)
				}
			})
		}
	}
	got, _ := history(t, s, store.HistoryQuery{Type: "Patient", ID: "a", Since: b.LastUpdated, Count: 5})
	if want := []string{"Patient/a/2"}; !equal(got, want) {
		t.Errorf("instance history since: got %v, want %v", got, want)
	}
}

func testHistoryAt(t *testing.T, s store.Store) {
	a1 := put(t, s, "Patient", "a", 1, false) // a1 is current over [t1, t3)
	pause()
	b1 := put(t, s, "Patient", "b", 1, false) // b1 over [t2, ∞)
	pause()
	a2 := put(t, s, "Patient", "a", 2, false) // a2 over [t3, t4)
	pause()
	a3 := put(t, s, "Patient", "a", 3, true) // deletion over [t4, ∞)
	t1, t2, t3, t4 := a1.LastUpdated, b1.LastUpdated, a2.LastUpdated, a3.LastUpdated
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		at, end time.Time
		want    []string
	}{
		{"instant before anything", t1.Add(-ms), time.Time{}, nil},
		{"instant at the first write", t1, time.Time{}, []string{"Patient/a/1"}},
		{"instant between writes", t2, time.Time{}, []string{"Patient/b/1", "Patient/a/1"}},
		{"instant at a replacement", t3, time.Time{}, []string{"Patient/a/2", "Patient/b/1"}},
		{"instant after the deletion", t4.Add(time.Hour), time.Time{}, []string{"Patient/a/3", "Patient/b/1"}},
		{"range ending where a version starts", t1, t3, []string{"Patient/b/1", "Patient/a/1"}},
		{"range covering everything", t1.Add(-time.Hour), t4.Add(time.Hour), []string{"Patient/a/3", "Patient/a/2", "Patient/b/1", "Patient/a/1"}},
		{"range inside one version's life", t2.Add(ms / 2), t3.Add(-ms / 2), []string{"Patient/b/1", "Patient/a/1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := history(t, s, store.HistoryQuery{At: tc.at, AtEnd: tc.end, Count: 3})
			if !equal(got, tc.want) || total != len(tc.want) {
				t.Errorf("got %v (total %d), want %v", got, total, tc.want)
			}
		})
	}
	got, _ := history(t, s, store.HistoryQuery{Type: "Patient", ID: "a", At: t2, Count: 3})
	if want := []string{"Patient/a/1"}; !equal(got, want) {
		t.Errorf("instance history at t2: got %v, want %v", got, want)
	}
}

func testHistoryPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("p%d", i)
		put(t, s, "Patient", id, 1, false)
		want = append([]string{"Patient/" + id + "/1"}, want...)
	}
	q := store.HistoryQuery{Type: "Patient", Count: 3}
	var got []string
	for page := 0; ; page++ {
		p, err := s.History(ctx, q)
		if err != nil {
			t.Fatalf("History page %d: %v", page, err)
		}
		if p.Total != 7 {
			t.Errorf("page %d Total: got %d, want 7", page, p.Total)
		}
		got = append(got, ids(p.Versions)...)
		// Writes between pages, new resources and new versions of ones
		// already listed, must not shift what the next page holds.
		put(t, s, "Patient", fmt.Sprintf("late%d", page), 1, false)
		put(t, s, "Patient", "p6", int64(page+2), false)
		if p.Next == "" {
			break
		}
		if page > 5 {
			t.Fatalf("paging does not end")
		}
		q.Cursor = p.Next
	}
	if !equal(got, want) {
		t.Fatalf("pages: got %v, want %v", got, want)
	}
}

func testHistoryInvalid(t *testing.T, s store.Store) {
	put(t, s, "Patient", "a", 1, false)
	for _, tc := range []struct {
		name string
		q    store.HistoryQuery
	}{
		{"zero count", store.HistoryQuery{}},
		{"negative count", store.HistoryQuery{Count: -1}},
		{"id without type", store.HistoryQuery{ID: "a", Count: 1}},
		{"garbage cursor", store.HistoryQuery{Count: 1, Cursor: "not a cursor"}},
		{"cursor with a bad number", store.HistoryQuery{Count: 1, Cursor: "h-1.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.History(context.Background(), tc.q)
			wantCode(t, "History", err, fhir.Invalid)
		})
	}
}

// hammer runs workers × rounds attempts of op concurrently and returns how
// many succeeded; every failure must be a Conflict.
func hammer(t *testing.T, workers, rounds int, op func() error) int {
	t.Helper()
	var (
		mu        sync.Mutex
		successes int
		wg        sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range rounds {
				err := op()
				mu.Lock()
				if err == nil {
					successes++
				} else if !fhir.IsCode(err, fhir.Conflict) {
					t.Errorf("attempt failed with %v, want success or a Conflict", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return successes
}

func testConcurrentCurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "Patient", "c", 1, false)
	n := hammer(t, 16, 20, func() error {
		return s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			cur, err := tx.Current(ctx, "Patient", "c")
			if err != nil {
				return err
			}
			next := cur.VersionID + 1
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: "c", VersionID: next, Method: "PUT", Body: body("Patient", "c", next, "")})
		})
	})
	got, err := s.Read(ctx, "Patient", "c")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got.VersionID != int64(1+n) {
		t.Fatalf("final version: got %d, want %d (1 + %d successful updates)", got.VersionID, 1+n, n)
	}
	if n == 0 {
		t.Fatalf("no update succeeded")
	}
}

func testConcurrentOptimistic(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "Patient", "o", 1, false)
	n := hammer(t, 16, 20, func() error {
		// Read outside the unit of work, as a client's If-Match does: a
		// racing writer makes the Put conflict instead of overwrite.
		cur, err := s.Read(ctx, "Patient", "o")
		if err != nil {
			return err
		}
		next := cur.VersionID + 1
		return s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: "o", VersionID: next, Method: "PUT", Body: body("Patient", "o", next, "")})
		})
	})
	got, err := s.Read(ctx, "Patient", "o")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got.VersionID != int64(1+n) {
		t.Fatalf("final version: got %d, want %d (1 + %d successful updates)", got.VersionID, 1+n, n)
	}
	page, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "o", Count: 1})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if page.Total != 1+n {
		t.Fatalf("history total: got %d, want %d", page.Total, 1+n)
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Update-as-create of one new resource from many writers at once: the
	// first creates it, the others update it or conflict, none is lost.
	n := hammer(t, 8, 4, func() error {
		return s.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			next := int64(1)
			cur, err := tx.Current(ctx, "Patient", "new")
			switch {
			case err == nil:
				next = cur.VersionID + 1
			case !fhir.IsCode(err, fhir.NotFound):
				return err
			}
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: "new", VersionID: next, Method: "PUT", Body: body("Patient", "new", next, "")})
		})
	})
	got, err := s.Read(ctx, "Patient", "new")
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got.VersionID != int64(n) {
		t.Fatalf("final version: got %d, want %d successful writes", got.VersionID, n)
	}
}
