package storetest

import (
	"context"
	"fmt"
	"slices"
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

// RunAudit checks an audit.Store: events come back as stored, newest
// first, filtered by patient, agent, interaction and time, paged by
// sequence number; concurrent appends never share a sequence number; and
// the records cannot be updated or deleted.
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
		// Two appends: sequence numbers continue across batches.
		if err := s.Append(ctx, all[:12]); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := s.Append(ctx, all[12:]); err != nil {
			t.Fatalf("Append: %v", err)
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
	})

	t.Run("AppendOnly", func(t *testing.T) {
		s, db := open(t)
		if err := s.Append(ctx, []audit.Event{event(1)}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"UPDATE audit_events SET status = 500",
			"DELETE FROM audit_events",
			"UPDATE audit_patients SET patient_id = 'x'",
			"DELETE FROM audit_patients",
		} {
			if _, err := db.Exec(ctx, q); err == nil {
				t.Errorf("%s: succeeded; the audit log must refuse it", q)
			}
		}
		got, err := s.Search(ctx, audit.Query{Patient: "p1", Count: 10})
		if err != nil || len(got) != 1 || got[0].Status != 200 {
			t.Fatalf("after refused changes: %+v, %v", got, err)
		}
	})
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
