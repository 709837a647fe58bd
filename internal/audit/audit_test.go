package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/validate"
)

func TestPatients(t *testing.T) {
	const base = "https://ehr.example/fhir"
	tests := []struct {
		name, typ, id, body string
		want                []string
	}{
		{"own id", "Patient", "p1", `{"resourceType":"Patient","id":"p1","link":[{"other":{"reference":"Patient/p2"}}]}`, []string{"p1", "p2"}},
		{"subject", "Observation", "o", `{"subject":{"reference":"Patient/123"},"performer":[{"reference":"Practitioner/9"}]}`, []string{"123"}},
		{"spacing and absolute", "Condition", "c", `{"subject": { "reference" :  "https://ehr.example/fhir/Patient/abc" }}`, []string{"abc"}},
		{"version", "Encounter", "e", `{"subject":{"reference":"Patient/x.y-1/_history/3"}}`, []string{"x.y-1"}},
		{"other server", "Observation", "o", `{"subject":{"reference":"https://other.example/fhir/Patient/zz"}}`, nil},
		{"contained and urn", "Observation", "o", `{"subject":{"reference":"#p"},"focus":[{"reference":"urn:uuid:1"}]}`, nil},
		{"reference as a value", "Basic", "b", `{"code":{"text":"reference"},"note":[{"text":"\"reference\": \"Patient/q\""}]}`, nil},
		{"several, once each", "CareTeam", "ct", `{"subject":{"reference":"Patient/a"},"participant":[{"member":{"reference":"Patient/b"}},{"member":{"reference":"Patient/a"}}]}`, []string{"a", "b"}},
		{"bad id", "Observation", "o", `{"subject":{"reference":"Patient/has space"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			Patients(tt.typ, tt.id, []byte(tt.body), base, func(p string) {
				if !slices.Contains(got, p) {
					got = append(got, p)
				}
			})
			if !slices.Equal(got, tt.want) {
				t.Errorf("Patients = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	day := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		query string
		want  Query
	}{
		{"", Query{Count: 20}},
		{"patient=Patient/p1&_count=500", Query{Patient: "p1", Count: 100}},
		{"patient=p1&agent=Practitioner/7", Query{Patient: "p1", FHIRUser: "Practitioner/7", Count: 20}},
		{"agent=my-app", Query{Agent: "my-app", Count: 20}},
		{"date=2026-03-01", Query{From: day("2026-03-01T00:00:00Z"), To: day("2026-03-02T00:00:00Z"), Count: 20}},
		{"date=ge2026-03&date=lt2026-03-10T12:00:00%2B02:00", Query{From: day("2026-03-01T00:00:00Z"), To: day("2026-03-10T10:00:00Z"), Count: 20}},
		{"date=gt2026&date=le2027-06", Query{From: day("2027-01-01T00:00:00Z"), To: day("2027-07-01T00:00:00Z"), Count: 20}},
		{"subtype=read,http://hl7.org/fhir/restful-interaction|search-type&_cursor=42", Query{Interactions: []string{"read", "search-type"}, Before: 42, Count: 20}},
	}
	for _, tt := range tests {
		v, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseQuery(v, 20, 100)
		if err != nil {
			t.Errorf("%s: %v", tt.query, err)
			continue
		}
		if !got.From.Equal(tt.want.From) || !got.To.Equal(tt.want.To) {
			t.Errorf("%s: window [%v, %v), want [%v, %v)", tt.query, got.From, got.To, tt.want.From, tt.want.To)
		}
		got.From, got.To, tt.want.From, tt.want.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.query, got, tt.want)
		}
	}
	for _, bad := range []string{"entity=Observation/1", "patient=Observation/1", "patient=a&patient=b", "date=ne2026", "date=yesterday", "_count=0", "_cursor=x", "agent=a,b", "subtype="} {
		v, _ := url.ParseQuery(bad)
		if _, err := ParseQuery(v, 20, 100); !fhir.IsCode(err, fhir.Invalid) {
			t.Errorf("%s: %v, want an Invalid error", bad, err)
		}
	}
}

// sink is a Sink in memory that can fail or block on demand.
type sink struct {
	mu      sync.Mutex
	batches [][]Event
	fail    int           // the next fail Appends fail
	gate    chan struct{} // when set, Append waits for it
}

func (s *sink) Append(ctx context.Context, events []Event) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("database is down")
	}
	s.batches = append(s.batches, slices.Clone(events))
	return nil
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		for _, e := range b {
			out = append(out, e.RequestID)
		}
	}
	return out
}

func events(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{RequestID: fmt.Sprint(i), Interaction: "read", Status: 200}
	}
	return out
}

func TestLogBatchesInOrder(t *testing.T) {
	s := &sink{}
	l := New(s, nil, Options{Interval: time.Hour, Batch: 100})
	var want []string
	for _, e := range events(250) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.RequestID)
	}
	// A long interval: only the batch size and Close make writes happen.
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.ids(); !slices.Equal(got, want) {
		t.Fatalf("written %d events out of order or lost", len(got))
	}
	for _, b := range s.batches {
		if len(b) > 100 {
			t.Fatalf("a batch of %d events; the limit is 100", len(b))
		}
	}
	if w, f := l.Stats(); w != 250 || f != 0 {
		t.Fatalf("Stats = %d, %d", w, f)
	}
	if err := l.Record(events(1)[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
}

func TestLogRetriesFailedWrites(t *testing.T) {
	s := &sink{fail: 2}
	l := New(s, nil, Options{Interval: time.Millisecond, Batch: 10})
	for _, e := range events(35) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := s.ids(); len(got) != 35 {
		t.Fatalf("%d of 35 events written after two failed writes", len(got))
	}
	if _, f := l.Stats(); f != 2 {
		t.Fatalf("failures = %d, want 2", f)
	}
}

func TestLogBlocksWhenFull(t *testing.T) {
	s := &sink{gate: make(chan struct{})}
	l := New(s, nil, Options{Interval: time.Millisecond, Batch: 5, MaxPending: 5})
	for _, e := range events(5) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- l.Record(Event{RequestID: "sixth"}) }()
	select {
	case <-done:
		t.Fatal("Record returned while the log was full and the database stuck")
	case <-time.After(50 * time.Millisecond):
	}
	close(s.gate) // the database answers again
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.ids(); len(got) != 6 || got[5] != "sixth" {
		t.Fatalf("written %v", got)
	}
}

func TestResourceIsAValidAuditEvent(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)
	tests := []struct {
		name       string
		e          Event
		agents     int
		requestor  string
		outcome    string
		action     string
		query      string
		entityRefs []string
	}{
		{"patient user reads", Event{Time: at, Interaction: "read", Type: "Observation", Resources: []string{"Observation/o1"}, Patients: []string{"p1"},
			Status: 200, ClientID: "app", Username: "pat", FHIRUser: "Patient/p1", Source: "192.0.2.1", RequestID: "r1"},
			2, "Patient/p1", "0", "R", "", []string{"Patient/p1", "Observation/o1"}},
		{"backend search", Event{Time: at, Interaction: "search-type", Type: "Condition", Query: "patient=p2", Patients: []string{"p2"},
			Resources: []string{"Condition/c1", "Patient/p2"}, Status: 200, ClientID: "backend", Source: "192.0.2.2"},
			1, "", "0", "E", "Condition?patient=p2", []string{"Patient/p2", "Condition/c1"}},
		{"unauthenticated", Event{Time: at, Interaction: "unknown", Type: "Patient", Resources: []string{"Patient/p3"}, Patients: []string{"p3"}, Status: 401, Source: "198.51.100.4"},
			1, "", "4", "", "", []string{"Patient/p3"}},
		{"server error on create", Event{Time: at, Interaction: "create", Type: "Observation", Status: 500, ClientID: "app", Username: "doc"},
			2, "", "8", "C", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Stored{Seq: 42, Event: tt.e}
			b := s.Resource("https://ehr.example/fhir", "https://ehr.example")
			if err := validate.Resource(b); err != nil {
				t.Fatalf("not a valid R4 AuditEvent: %v\n%s", err, b)
			}
			var ae struct {
				ID       string
				Recorded string
				Outcome  string
				Action   string
				Agent    []struct {
					Who       struct{ Reference string }
					Requestor bool
					Network   struct{ Address string }
				}
				Entity []struct {
					What        struct{ Reference string }
					Query       string
					Description string
				}
			}
			if err := json.Unmarshal(b, &ae); err != nil {
				t.Fatal(err)
			}
			if ae.ID != "42" || ae.Recorded != "2026-03-01T12:30:00.123Z" || ae.Outcome != tt.outcome || ae.Action != tt.action {
				t.Errorf("id %s recorded %s outcome %s action %s", ae.ID, ae.Recorded, ae.Outcome, ae.Action)
			}
			if len(ae.Agent) != tt.agents || !ae.Agent[0].Requestor || ae.Agent[0].Who.Reference != tt.requestor || ae.Agent[0].Network.Address != tt.e.Source {
				t.Errorf("agents %+v", ae.Agent)
			}
			var refs []string
			var query string
			for _, en := range ae.Entity {
				if en.What.Reference != "" {
					refs = append(refs, en.What.Reference)
				}
				if en.Query != "" {
					q, err := base64.StdEncoding.DecodeString(en.Query)
					if err != nil || string(q) != en.Description {
						t.Errorf("entity.query %q does not encode %q", en.Query, en.Description)
					}
					query = en.Description
				}
			}
			if !slices.Equal(refs, tt.entityRefs) || query != tt.query {
				t.Errorf("entities %v query %q, want %v %q", refs, query, tt.entityRefs, tt.query)
			}
		})
	}
}

// BenchmarkPatients scans a search page's worth of Observations (50, about
// 40 KB) for the patients they refer to.
func BenchmarkPatients(b *testing.B) {
	obs := []byte(`{"resourceType":"Observation","id":"daa9a53e-c1f5-4908-80e4-51fc69312d4c","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/bodyheight","http://hl7.org/fhir/StructureDefinition/vitalsigns"],"versionId":"1","lastUpdated":"2026-12-04T18:54:29.295Z"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"8302-2","display":"Body Height"}],"text":"Body Height"},"subject":{"reference":"Patient/8a748927-a436-4b74-9e95-b08b76a34799"},"encounter":{"reference":"Encounter/e874c560-5faf-4612-81f3-125007245b6b"},"effectiveDateTime":"2010-09-16T12:21:06+02:00","issued":"2010-09-16T12:21:06.190+02:00","valueQuantity":{"value":167.7,"unit":"cm","system":"http://unitsofmeasure.org","code":"cm"}}`)
	var seen []string
	add := func(p string) {
		if !slices.Contains(seen, p) {
			seen = append(seen, p)
		}
	}
	b.SetBytes(int64(50 * len(obs)))
	for b.Loop() {
		for range 50 {
			Patients("Observation", "daa9a53e", obs, "http://localhost:8080/fhir", add)
		}
	}
	if len(seen) != 1 {
		b.Fatalf("patients %v", seen)
	}
}
