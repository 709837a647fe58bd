package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
)

// Execer runs a raw statement: RunAudit uses it to show that the log
// refuses changes.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// AuditSegment is the segment size (sqlstore.Config.AuditSegmentEvents)
// of the stores RunAudit and RunAuditSegments are given: small, so that
// searches cross segments of the term index and the events after them.
const AuditSegment = 20

// RunAudit checks an audit.Store: events come back as stored, newest
// first, filtered by patient, agent, interaction and time, paged by
// sequence number; concurrent appends never share a sequence number; and
// the records cannot be updated or deleted. open gives stores whose term
// index is written in segments of AuditSegment events.
func RunAudit(t *testing.T, open func(t *testing.T) (audit.Store, Execer)) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	event := func(i int) audit.Event {
		e := audit.Event{
			Time:        base.Add(time.Duration(i) * time.Minute),
			Interaction: []string{"read", "search-type", "create"}[i%3],
			Type:        "Observation",
			Resources:   []string{fmt.Sprintf("Observation/o%d", i)},
			Patients:    []string{fmt.Sprintf("p%d", i%4)},
			Status:      200,
			ClientID:    []string{"app-a", "app-b"}[i%2],
			Username:    "alice",
			FHIRUser:    "Practitioner/alice",
			Source:      "192.0.2.7",
			RequestID:   fmt.Sprintf("req-%d", i),
		}
		if i%5 == 0 {
			e.Username, e.FHIRUser = "", ""
			e.Patients = append(e.Patients, "shared")
			e.Query = "patient=p1&code=1234-5"
			e.Resources = nil
		}
		return e
	}

	t.Run("RoundTripAndFilters", func(t *testing.T) {
		s, _ := open(t)
		var all []audit.Event
		for i := range 30 {
			all = append(all, event(i))
		}
		// Three appends: sequence numbers continue across batches; the
		// second ends a segment of the term index, the third stays after
		// it.
		for _, part := range [][]audit.Event{all[:12], all[12:25], all[25:]} {
			if err := s.Append(ctx, part); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		got, err := s.Search(ctx, audit.Query{Count: 100})
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		if len(got) != 30 {
			t.Fatalf("Search all: %d events, want 30", len(got))
		}
		for i, st := range got {
			want := all[29-i]
			if i > 0 && st.Seq >= got[i-1].Seq {
				t.Fatalf("not newest first: seq %d after %d", st.Seq, got[i-1].Seq)
			}
			if !sameEvent(st.Event, want) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, st.Event, want)
			}
			one, err := s.Get(ctx, st.Seq)
			if err != nil || !sameEvent(one.Event, want) {
				t.Fatalf("Get(%d) = %+v, %v; want %+v", st.Seq, one, err, want)
			}
		}
		if _, err := s.Get(ctx, got[0].Seq+1000); !fhir.IsCode(err, fhir.NotFound) {
			t.Fatalf("Get(unknown): %v, want NotFound", err)
		}

		check := func(name string, q audit.Query, keep func(i int, e audit.Event) bool) {
			t.Helper()
			q.Count = 100
			res, err := s.Search(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				if keep(i, all[i]) {
					want = append(want, all[i].RequestID)
				}
			}
			var ids []string
			for _, r := range res {
				ids = append(ids, r.RequestID)
			}
			if len(want) == 0 || !slices.Equal(ids, want) {
				t.Fatalf("%s: got %v, want %v", name, ids, want)
			}
			// Small pages cross the batches and their index rows.
			if paged := pageAudit(t, s, q, 3); !slices.Equal(paged, want) {
				t.Fatalf("%s in pages of 3: got %v, want %v", name, paged, want)
			}
		}
		check("patient", audit.Query{Patient: "p1"}, func(i int, e audit.Event) bool { return slices.Contains(e.Patients, "p1") })
		check("shared patient", audit.Query{Patient: "shared"}, func(i int, e audit.Event) bool { return i%5 == 0 })
		check("fhirUser", audit.Query{FHIRUser: "Practitioner/alice"}, func(i int, e audit.Event) bool { return e.FHIRUser != "" })
		check("client", audit.Query{Agent: "app-b"}, func(i int, e audit.Event) bool { return e.ClientID == "app-b" })
		check("username", audit.Query{Agent: "alice"}, func(i int, e audit.Event) bool { return e.Username == "alice" })
		check("interactions", audit.Query{Interactions: []string{"read", "create"}}, func(i int, e audit.Event) bool { return e.Interaction != "search-type" })
		from, to := base.Add(10*time.Minute), base.Add(20*time.Minute)
		check("window", audit.Query{From: from, To: to}, func(i int, e audit.Event) bool { return !e.Time.Before(from) && e.Time.Before(to) })
		check("patient+window+agent", audit.Query{Patient: "p0", From: from, Agent: "app-a"}, func(i int, e audit.Event) bool {
			return slices.Contains(e.Patients, "p0") && !e.Time.Before(from) && e.ClientID == "app-a"
		})

		// Paging: Before continues below the last seq of a page.
		var paged []int64
		q := audit.Query{Count: 7}
		for {
			page, err := s.Search(ctx, q)
			if err != nil {
				t.Fatalf("page: %v", err)
			}
			for _, p := range page {
				paged = append(paged, p.Seq)
			}
			if len(page) < q.Count {
				break
			}
			q.Before = page[len(page)-1].Seq
		}
		if len(paged) != 30 || !slices.IsSortedFunc(paged, func(a, b int64) int { return int(b - a) }) {
			t.Fatalf("paging gave %v", paged)
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s, _ := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var batch []audit.Event
				for i := range 25 {
					e := event(i)
					e.RequestID = fmt.Sprintf("w%d-%d", w, i)
					batch = append(batch, e)
				}
				errs <- s.Append(ctx, batch)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent Append: %v", err)
			}
		}
		got, err := s.Search(ctx, audit.Query{Count: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for _, e := range got {
			if seen[e.Seq] {
				t.Fatalf("sequence number %d used twice", e.Seq)
			}
			seen[e.Seq] = true
		}
		if len(got) != 200 {
			t.Fatalf("%d events stored, want 200", len(got))
		}
		// The index finds every event of the interleaved writers, in order.
		for _, q := range []audit.Query{{Patient: "p1"}, {Agent: "alice"}, {FHIRUser: "Practitioner/alice"}} {
			var want []string
			for _, e := range got {
				if (q.Patient != "" && slices.Contains(e.Patients, q.Patient)) || (q.Agent != "" && e.Username == q.Agent) ||
					(q.FHIRUser != "" && e.FHIRUser == q.FHIRUser) {
					want = append(want, e.RequestID)
				}
			}
			if paged := pageAudit(t, s, q, 4); len(want) == 0 || !slices.Equal(paged, want) {
				t.Fatalf("%+v after concurrent appends: got %v, want %v", q, paged, want)
			}
		}
	})

	t.Run("BlocksAndEscapes", func(t *testing.T) {
		// One batch larger than a block (the store splits it) and texts
		// that JSON must escape.
		s, _ := open(t)
		var all []audit.Event
		for i := range 700 {
			e := event(i)
			e.Query = fmt.Sprintf("name=\"O'Brien\"\\x\n\t\u00e9\u2028%d", i)
			all = append(all, e)
		}
		if err := s.Append(ctx, all); err != nil {
			t.Fatalf("Append: %v", err)
		}
		got := pageAudit(t, s, audit.Query{}, 150)
		if len(got) != 700 || got[0] != "req-699" || got[699] != "req-0" {
			t.Fatalf("all in pages of 150: %d events, first %v", len(got), got[:min(3, len(got))])
		}
		res, err := s.Search(ctx, audit.Query{Patient: "p2", Count: 1000})
		if err != nil || len(res) != 175 {
			t.Fatalf("patient p2: %d events, %v; want 175", len(res), err)
		}
		for _, r := range res {
			i, _ := strconv.Atoi(strings.TrimPrefix(r.RequestID, "req-"))
			if !sameEvent(r.Event, all[i]) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, r.Event, all[i])
			}
		}
		bad := event(1)
		bad.Query = "x=\xff\xfe"
		if err := s.Append(ctx, []audit.Event{bad}); err != nil {
			t.Fatalf("Append of invalid UTF-8: %v", err)
		}
		res, err = s.Search(ctx, audit.Query{Count: 1})
		if err != nil || len(res) != 1 || res[0].Query != "x=\ufffd\ufffd" {
			t.Fatalf("invalid UTF-8 read back as %+v, %v", res, err)
		}
	})

	t.Run("AppendOnly", func(t *testing.T) {
		s, db := open(t)
		var batch []audit.Event // a segment's worth: the term index has rows
		for i := range AuditSegment {
			batch = append(batch, event(i))
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"UPDATE audit_blocks SET events = '[]'",
			"DELETE FROM audit_blocks",
			"UPDATE audit_terms SET term = 'x'",
			"DELETE FROM audit_terms",
		} {
			if _, err := db.Exec(ctx, q); err == nil {
				t.Errorf("%s: succeeded; the audit log must refuse it", q)
			}
		}
		got, err := s.Search(ctx, audit.Query{Patient: "p1", Count: 100})
		if err != nil || len(got) != AuditSegment/4 || got[0].RequestID != batch[len(batch)-3].RequestID {
			t.Fatalf("after refused changes: %+v, %v", got, err)
		}
	})
}

// Querier reads raw: RunAuditSegments counts the term index's rows.
type Querier interface {
	QueryRow(ctx context.Context, query string, args []any, dest ...any) error
}

// RunAuditSegments checks the term index's segments and the events after
// them, with two handles on one database that append in turns, as two
// processes (a server and a CLI) or a restarted server do: each search,
// through either, finds every event of its patient, agent or fhirUser,
// newest first, in pages that cross segments and the tail; segments are
// written, and the events after the last one stay fewer than a segment
// and a batch. open gives a new handle on the same database at each call,
// its term index in segments of AuditSegment events.
func RunAuditSegments(t *testing.T, open func(t *testing.T) (audit.Store, Querier)) {
	ctx := context.Background()
	a, db := open(t)
	b, _ := open(t)
	rng := rand.New(rand.NewPCG(3, 7))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var all []audit.Event // in the order appended: sequence order
	queries := []audit.Query{
		{Patient: "p0"}, {Patient: "p3"}, {Patient: "p5"},
		{Agent: "app-1"}, {Agent: "user-2"}, {FHIRUser: "Practitioner/f1"},
		{Patient: "p1", Agent: "app-0"},
	}
	matches := func(q audit.Query, e audit.Event) bool {
		return (q.Patient == "" || slices.Contains(e.Patients, q.Patient)) &&
			(q.Agent == "" || e.ClientID == q.Agent || e.Username == q.Agent) &&
			(q.FHIRUser == "" || e.FHIRUser == q.FHIRUser)
	}
	check := func(round int) {
		t.Helper()
		for h, s := range []audit.Store{a, b} {
			for _, q := range queries {
				var want []string
				for i := len(all) - 1; i >= 0; i-- {
					if matches(q, all[i]) {
						want = append(want, all[i].RequestID)
					}
				}
				if got := pageAudit(t, s, q, 7); !slices.Equal(got, want) {
					t.Fatalf("after round %d, handle %d, %+v:\n got %v\nwant %v", round, h, q, got, want)
				}
			}
		}
	}
	const maxBatch = 9
	for round := range 40 {
		// Mostly a, at times b, whose next append then finds events it
		// did not write after the last segment.
		s := a
		if round%4 == 3 {
			s = b
		}
		var batch []audit.Event
		for range 1 + rng.IntN(maxBatch) {
			i := len(all) + len(batch)
			e := audit.Event{
				Time: base.Add(time.Duration(i) * time.Second), Interaction: "read", Type: "Observation", Status: 200,
				ClientID: fmt.Sprintf("app-%d", i%2), RequestID: fmt.Sprintf("req-%d", i),
			}
			for k := range 1 + rng.IntN(3) {
				if p := fmt.Sprintf("p%d", rng.IntN(6)); k == 0 || !slices.Contains(e.Patients, p) {
					e.Patients = append(e.Patients, p)
				}
			}
			if i%3 != 0 {
				e.Username, e.FHIRUser = fmt.Sprintf("user-%d", i%3), fmt.Sprintf("Practitioner/f%d", i%2)
			}
			batch = append(batch, e)
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatalf("round %d: Append: %v", round, err)
		}
		all = append(all, batch...)
		tailAfterSegments(t, a, db, len(all))
		if round%8 == 7 {
			check(round)
		}
	}
	if segments := tailAfterSegments(t, a, db, len(all)); segments < int64(len(all)/(AuditSegment+maxBatch))-1 {
		t.Fatalf("%d segments for %d events", segments, len(all))
	}
}

// tailAfterSegments checks that fewer than AuditSegment of the n events
// stored come after the term index's last segment, and returns how many
// segments there are.
func tailAfterSegments(t *testing.T, s audit.Store, db Querier, n int) int64 {
	t.Helper()
	ctx := context.Background()
	var segments, last int64
	if err := db.QueryRow(ctx, "SELECT COUNT(*), COALESCE(MAX(last_seq), 0) FROM audit_terms WHERE term = 'segment:'", nil, &segments, &last); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Search(ctx, audit.Query{Count: n + 1})
	if err != nil || len(stored) != n {
		t.Fatalf("all events: %d, %v; want %d", len(stored), err, n)
	}
	after := 0
	for _, e := range stored {
		if e.Seq > last {
			after++
		}
	}
	if after >= AuditSegment {
		t.Fatalf("%d events after the last segment; want fewer than %d", after, AuditSegment)
	}
	return segments
}

// sameEvent compares events as the database returns them: instants at
// microsecond precision, empty lists as nil.
func sameEvent(a, b audit.Event) bool {
	return a.Time.Equal(b.Time.Truncate(time.Microsecond)) &&
		a.Interaction == b.Interaction && a.Type == b.Type &&
		slices.Equal(a.Resources, b.Resources) && a.Query == b.Query &&
		slices.Equal(a.Patients, b.Patients) && a.Status == b.Status &&
		a.ClientID == b.ClientID && a.Username == b.Username && a.FHIRUser == b.FHIRUser &&
		a.Source == b.Source && a.RequestID == b.RequestID
}

// pageAudit runs q in pages of n, following each page's last sequence
// number, and returns the request ids found, in order.
func pageAudit(t *testing.T, s audit.Store, q audit.Query, n int) []string {
	t.Helper()
	q.Count, q.Before = n, 0
	var ids []string
	for range 1000 {
		page, err := s.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		for _, e := range page {
			ids = append(ids, e.RequestID)
		}
		if len(page) < n {
			return ids
		}
		q.Before = page[len(page)-1].Seq
	}
	t.Fatalf("%+v: paging does not end", q)
	return nil
}

// Migrator is a database that can be migrated step by step.
type Migrator interface {
	Execer
	QueryRow(ctx context.Context, query string, args []any, dest ...any) error
	MigrateTo(ctx context.Context, version int64) error
	Migrate(ctx context.Context) error
}

// RunAuditUpgrade checks that the records an older release wrote (schema
// version 7: one audit_patients row per event and patient) read back the
// same after the upgrade to the term index, and that appends continue
// after them. db is empty and not migrated; s is its audit log. nextSeq,
// when set, is the statement by which that release took a sequence
// number (a PostgreSQL sequence); otherwise they count from 1.
func RunAuditUpgrade(t *testing.T, db Migrator, s audit.Store, nextSeq string) {
	ctx := context.Background()
	if err := db.MigrateTo(ctx, 7); err != nil {
		t.Fatalf("MigrateTo(7): %v", err)
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var third int64 // the sequence number of old-3
	for i := int64(1); i <= 5; i++ {
		seq := i
		if nextSeq != "" {
			if err := db.QueryRow(ctx, nextSeq, nil, &seq); err != nil {
				t.Fatalf("%s: %v", nextSeq, err)
			}
		}
		if i == 3 {
			third = seq
		}
		pat := fmt.Sprintf("p%d", i%2)
		if _, err := db.Exec(ctx, `INSERT INTO audit_events (seq, recorded, interaction, resource_type, resources, query, patients,
			status, client_id, username, fhir_user, source, request_id) VALUES (?, ?, 'read', 'Patient', ?, '', ?, 200, 'app', ?, '', '192.0.2.1', ?)`,
			seq, base.Add(time.Duration(i)*time.Minute).UnixMicro(), "Patient/"+pat, pat, []string{"", "bob"}[i%2], fmt.Sprintf("old-%d", i)); err != nil {
			t.Fatalf("old event %d: %v", i, err)
		}
		if _, err := db.Exec(ctx, "INSERT INTO audit_patients (patient_id, seq) VALUES (?, ?)", pat, seq); err != nil {
			t.Fatalf("old event %d: %v", i, err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	e := audit.Event{Time: base.Add(time.Hour), Interaction: "read", Type: "Patient", Resources: []string{"Patient/p1"},
		Patients: []string{"p1"}, Status: 200, ClientID: "app", Username: "bob", Source: "192.0.2.1", RequestID: "new-1"}
	if err := s.Append(ctx, []audit.Event{e}); err != nil {
		t.Fatalf("Append after the upgrade: %v", err)
	}
	for _, c := range []struct {
		q    audit.Query
		want []string
	}{
		{audit.Query{}, []string{"new-1", "old-5", "old-4", "old-3", "old-2", "old-1"}},
		{audit.Query{Patient: "p1"}, []string{"new-1", "old-5", "old-3", "old-1"}},
		{audit.Query{Patient: "p0"}, []string{"old-4", "old-2"}},
		{audit.Query{Agent: "bob"}, []string{"new-1", "old-5", "old-3", "old-1"}},
		{audit.Query{Agent: "app"}, []string{"new-1", "old-5", "old-4", "old-3", "old-2", "old-1"}},
	} {
		if got := pageAudit(t, s, c.q, 2); !slices.Equal(got, c.want) {
			t.Errorf("%+v after the upgrade: got %v, want %v", c.q, got, c.want)
		}
	}
	got, err := s.Get(ctx, third)
	if err != nil || got.RequestID != "old-3" || !got.Time.Equal(base.Add(3*time.Minute)) || !slices.Equal(got.Patients, []string{"p1"}) {
		t.Fatalf("Get(3) after the upgrade: %+v, %v", got, err)
	}
}

// RunAuditBlocksUpgrade checks migration 0012: records of the one-row-per-
// record table (written here out of order, more than a block's worth) read
// back in order and whole from their blocks, and appends continue after
// them. db is empty and not migrated; s is its audit log. setSeq, when
// set, is the statement that moves the release's sequence past the records
// written (a PostgreSQL sequence).
func RunAuditBlocksUpgrade(t *testing.T, db Migrator, s audit.Store, setSeq string) {
	ctx := context.Background()
	if err := db.MigrateTo(ctx, 11); err != nil {
		t.Fatalf("MigrateTo(11): %v", err)
	}
	const n = 600
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		seq := int64(i + 1)
		if _, err := db.Exec(ctx, `INSERT INTO audit_events (seq, recorded, interaction, resource_type, resources, query, patients,
			status, client_id, username, fhir_user, source, request_id) VALUES (?, ?, 'search-type', 'Observation', ?, ?, ?, 200, 'app', 'bob', 'Patient/p1', '192.0.2.1', ?)`,
			seq, base.Add(time.Duration(seq)*time.Second).UnixMicro(), fmt.Sprintf("Observation/o%d Observation/x%d", seq, seq),
			fmt.Sprintf(`code="a\b"&n=%d`, seq), "p1", fmt.Sprintf("old-%d", seq)); err != nil {
			t.Fatalf("old event %d: %v", seq, err)
		}
		if _, err := db.Exec(ctx, "INSERT INTO audit_terms (term, last_seq, first_seq, seqs) VALUES ('patient:p1', ?, ?, ?)",
			seq, seq, strconv.FormatInt(seq, 10)); err != nil {
			t.Fatalf("old event %d: %v", seq, err)
		}
	}
	if setSeq != "" {
		if _, err := db.Exec(ctx, setSeq, n); err != nil {
			t.Fatalf("%s: %v", setSeq, err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	// The term rows written before segments cover every old event: a
	// segment marker says so (0015), and a search need not read their
	// blocks.
	var covered int64
	if err := db.QueryRow(ctx, "SELECT MAX(last_seq) FROM audit_terms WHERE term = 'segment:'", nil, &covered); err != nil || covered != n {
		t.Fatalf("the term index after the upgrade covers events up to %d, %v; want %d", covered, err, n)
	}
	if err := s.Append(ctx, []audit.Event{{Time: base.Add(time.Hour), Interaction: "read", Type: "Patient", Patients: []string{"p1"},
		Status: 200, ClientID: "app", RequestID: "new-1"}}); err != nil {
		t.Fatalf("Append after the upgrade: %v", err)
	}
	got, err := s.Search(ctx, audit.Query{Count: 1000})
	if err != nil || len(got) != n+1 || got[0].RequestID != "new-1" || got[0].Seq != n+1 {
		t.Fatalf("after the upgrade: %d events, %v", len(got), err)
	}
	for k, e := range got[1:] {
		seq := int64(n - k)
		want := audit.Event{Time: base.Add(time.Duration(seq) * time.Second), Interaction: "search-type", Type: "Observation",
			Resources: []string{fmt.Sprintf("Observation/o%d", seq), fmt.Sprintf("Observation/x%d", seq)},
			Query:     fmt.Sprintf(`code="a\b"&n=%d`, seq), Patients: []string{"p1"}, Status: 200, ClientID: "app", Username: "bob",
			FHIRUser: "Patient/p1", Source: "192.0.2.1", RequestID: fmt.Sprintf("old-%d", seq)}
		if e.Seq != seq || !sameEvent(e.Event, want) {
			t.Fatalf("event %d after the upgrade:\n got %d %+v\nwant %+v", seq, e.Seq, e.Event, want)
		}
	}
	from := base.Add(250 * time.Second)
	if page := pageAudit(t, s, audit.Query{Patient: "p1", From: from, To: base.Add(260 * time.Second)}, 3); len(page) != 10 || page[0] != "old-259" {
		t.Fatalf("a window after the upgrade: %v", page)
	}
}
