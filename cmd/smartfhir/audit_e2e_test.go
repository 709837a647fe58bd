package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/validate"
)

// auditEvent is what the tests read of an AuditEvent.
type auditEvent struct {
	ID        string
	Subtype   string
	Action    string
	Outcome   string
	Requestor string // who.reference, else who.identifier.value, else who.display
	Client    string // the Application agent's identifier value
	Address   string
	Entities  []string
	Query     string
}

func parseAuditEvent(t *testing.T, raw json.RawMessage) auditEvent {
	t.Helper()
	if err := validate.Resource(raw); err != nil {
		t.Fatalf("the audit log serves an invalid AuditEvent: %v\n%s", err, raw)
	}
	var r struct {
		ID      string
		Subtype []struct{ Code string }
		Action  string
		Outcome string
		Agent   []struct {
			Type *struct{ Coding []struct{ Code string } }
			Who  struct {
				Reference  string
				Identifier struct{ Value string }
				Display    string
			}
			Requestor bool
			Network   struct{ Address string }
		}
		Entity []struct {
			What        struct{ Reference string }
			Description string
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	e := auditEvent{ID: r.ID, Action: r.Action, Outcome: r.Outcome}
	if len(r.Subtype) > 0 {
		e.Subtype = r.Subtype[0].Code
	}
	for _, a := range r.Agent {
		if a.Requestor {
			e.Requestor = cmpOr(a.Who.Reference, a.Who.Identifier.Value, a.Who.Display)
			e.Address = a.Network.Address
		}
		if a.Type != nil {
			e.Client = a.Who.Identifier.Value
		}
	}
	for _, en := range r.Entity {
		if en.What.Reference != "" {
			e.Entities = append(e.Entities, en.What.Reference)
		}
		if en.Description != "" {
			e.Query = en.Description
		}
	}
	return e
}

func cmpOr(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// auditSearch runs an AuditEvent search with the named token, following
// next links, and returns the events.
func (e *accessEnv) auditSearch(token, query string) []auditEvent {
	e.t.Helper()
	var out []auditEvent
	e.pages(token, query, func(body []byte) {
		var b struct {
			Entry []struct {
				FullURL  string
				Resource json.RawMessage
			}
		}
		if err := json.Unmarshal(body, &b); err != nil {
			e.t.Fatal(err)
		}
		for _, en := range b.Entry {
			ev := parseAuditEvent(e.t, en.Resource)
			if en.FullURL != e.base+"/fhir/AuditEvent/"+ev.ID {
				e.t.Fatalf("fullUrl %s for AuditEvent/%s", en.FullURL, ev.ID)
			}
			out = append(out, ev)
		}
	})
	return out
}

// waitAudit searches until want holds for the events (they are written in
// batches, within a fraction of a second), failing after a few seconds.
func (e *accessEnv) waitAudit(query string, want func([]auditEvent) bool) []auditEvent {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := e.auditSearch("admin", query)
		if want(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: the expected audit events did not appear; got %+v", query, evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func find(evs []auditEvent, match func(auditEvent) bool) (auditEvent, bool) {
	i := slices.IndexFunc(evs, match)
	if i < 0 {
		return auditEvent{}, false
	}
	return evs[i], true
}

func TestAuditTrail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		e := startAccess(t, dbArgs)
		e.cli("users", "add", "--username", "admin", "--password", "correct horse", "--role", "admin")
		e.tokens["admin"] = e.loginToken("admin", "", "user/AuditEvent.rs")
		e.tokens["admin-patients"] = e.loginToken("admin", "", "user/Patient.rs")
		since := url.QueryEscape(fhir.FormatInstant(time.Now()))

		// What the auditor will look for.
		steps := []struct {
			token, method, path, body string
			status                    int
		}{
			{"patient-v2", "GET", "Patient/pa", "", 200},
			{"patient-v2", "GET", "Observation?patient=pa&category=laboratory", "", 200},
			{"patient-v2", "GET", "Observation/ob-lab", "", 404}, // pb's: denied as absent
			{"patient-v2", "POST", "Observation", observation("", "pa", "laboratory", "718-7"), 201},
			{"system", "GET", "Condition/cb", "", 200},
			{"none", "GET", "Patient/pb", "", 401},
		}
		for _, s := range steps {
			if st, body := e.call(s.token, s.method, s.path, s.body); st != s.status {
				t.Fatalf("%s %s as %s = %d %s, want %d", s.method, s.path, s.token, st, body, s.status)
			}
		}

		t.Run("who touched patient pb", func(t *testing.T) {
			evs := e.waitAudit("AuditEvent?patient=pb&date=ge"+since, func(evs []auditEvent) bool { return len(evs) >= 3 })
			if ev, ok := find(evs, func(ev auditEvent) bool {
				return ev.Subtype == "read" && slices.Contains(ev.Entities, "Observation/ob-lab")
			}); !ok ||
				ev.Requestor != "Patient/pa" || ev.Subtype != "read" || ev.Outcome != "4" || ev.Address != "127.0.0.1" {
				t.Errorf("the denied read of pb's Observation by pa's app: %+v (found %v)", ev, ok)
			}
			if ev, ok := find(evs, func(ev auditEvent) bool { return ev.Subtype == "read" && slices.Contains(ev.Entities, "Condition/cb") }); !ok ||
				ev.Requestor == "" || ev.Requestor != ev.Client || ev.Outcome != "0" || ev.Action != "R" {
				t.Errorf("the backend client's read of Condition/cb: %+v (found %v)", ev, ok)
			}
			if ev, ok := find(evs, func(ev auditEvent) bool { return ev.Requestor == "unauthenticated request" }); !ok || ev.Outcome != "4" {
				t.Errorf("the unauthenticated read of Patient/pb: %+v (found %v)", ev, ok)
			}
			for _, ev := range evs {
				if !slices.Contains(ev.Entities, "Patient/pb") {
					t.Errorf("AuditEvent?patient=pb returned an event without pb: %+v", ev)
				}
			}
		})

		t.Run("what pa's app did", func(t *testing.T) {
			evs := e.waitAudit("AuditEvent?agent=Patient/pa&date=ge"+since, func(evs []auditEvent) bool { return len(evs) >= 4 })
			for _, ev := range evs {
				if ev.Requestor != "Patient/pa" {
					t.Errorf("agent=Patient/pa returned %+v", ev)
				}
			}
			if ev, ok := find(evs, func(ev auditEvent) bool { return ev.Subtype == "search-type" }); !ok ||
				ev.Query != "Observation?patient=pa&category=laboratory" || !slices.Equal(ev.Entities, []string{"Patient/pa"}) || ev.Action != "E" {
				t.Errorf("the search: %+v (found %v)", ev, ok)
			}
			if ev, ok := find(evs, func(ev auditEvent) bool { return ev.Subtype == "create" }); !ok || ev.Action != "C" || ev.Outcome != "0" ||
				len(ev.Entities) != 2 || !slices.Contains(ev.Entities, "Patient/pa") {
				t.Errorf("the create: %+v (found %v)", ev, ok)
			}
			// Newest first: the create came after the search.
			creates := slices.IndexFunc(evs, func(ev auditEvent) bool { return ev.Subtype == "create" })
			searches := slices.IndexFunc(evs, func(ev auditEvent) bool { return ev.Subtype == "search-type" })
			if creates > searches {
				t.Errorf("events are not newest first: %+v", evs)
			}
			only := e.auditSearch("admin", "AuditEvent?agent=Patient/pa&subtype=create&date=ge"+since)
			if len(only) != 1 || only[0].Subtype != "create" {
				t.Errorf("subtype=create: %+v", only)
			}
		})

		t.Run("read by id and paging", func(t *testing.T) {
			all := e.auditSearch("admin", "AuditEvent?date=ge"+since)
			paged := e.auditSearch("admin", "AuditEvent?_count=2&date=ge"+since)
			if len(all) < 6 || len(paged) < len(all) {
				t.Fatalf("%d events in one page, %d in pages of two", len(all), len(paged))
			}
			seen := map[string]bool{}
			for _, ev := range paged {
				if seen[ev.ID] {
					t.Fatalf("paging repeated AuditEvent/%s", ev.ID)
				}
				seen[ev.ID] = true
			}
			st, body := e.call("admin", "GET", "AuditEvent/"+all[0].ID, "")
			if st != 200 {
				t.Fatalf("read AuditEvent/%s = %d %s", all[0].ID, st, body)
			}
			if got := parseAuditEvent(t, body); got.ID != all[0].ID || got.Subtype != all[0].Subtype {
				t.Errorf("read %+v, searched %+v", got, all[0])
			}
			if st, body := e.call("admin", "GET", "AuditEvent/999999999", ""); st != 404 {
				t.Errorf("unknown AuditEvent = %d %s", st, body)
			}
		})

		t.Run("only administrators", func(t *testing.T) {
			for tok, want := range map[string]int{"none": 401, "patient-v2": 403, "system": 403, "user-doc": 403, "admin-patients": 403} {
				if st, body := e.call(tok, "GET", "AuditEvent", ""); st != want {
					t.Errorf("AuditEvent search as %s = %d %s, want %d", tok, st, body, want)
				}
			}
			for _, r := range []struct{ method, path, body string }{
				{"POST", "AuditEvent", `{"resourceType":"AuditEvent"}`},
				{"PUT", "AuditEvent/1", `{"resourceType":"AuditEvent","id":"1"}`},
				{"DELETE", "AuditEvent/1", ""},
				{"GET", "AuditEvent/1/_history", ""},
			} {
				if st, body := e.call("admin", r.method, r.path, r.body); st != 405 {
					t.Errorf("%s %s = %d %s, want 405", r.method, r.path, st, body)
				}
			}
			if st, body := e.call("admin", "GET", "AuditEvent?entity=Patient/pa", ""); st != 400 {
				t.Errorf("an unsupported AuditEvent parameter = %d %s, want 400", st, body)
			}
			tx := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"AuditEvent/1"}}]}`
			st, body := e.call("system", "POST", "", tx)
			if st != 200 || !strings.Contains(string(body), `"code":"not-supported"`) {
				t.Errorf("a batch deleting an AuditEvent = %d %s", st, body)
			}
		})

		t.Run("capability statement", func(t *testing.T) {
			st, body := e.call("none", "GET", "metadata", "")
			var cs struct {
				Rest []struct {
					Resource []struct {
						Type        string
						Interaction []struct{ Code string }
						SearchParam []struct{ Name string }
					}
				}
			}
			if st != 200 || json.Unmarshal(body, &cs) != nil {
				t.Fatalf("metadata = %d", st)
			}
			for _, r := range cs.Rest[0].Resource {
				if r.Type != "AuditEvent" {
					continue
				}
				var got []string
				for _, i := range r.Interaction {
					got = append(got, i.Code)
				}
				for _, p := range r.SearchParam {
					got = append(got, p.Name)
				}
				if want := []string{"read", "search-type", "patient", "agent", "date", "subtype"}; !slices.Equal(got, want) {
					t.Errorf("AuditEvent capabilities %v, want %v", got, want)
				}
				return
			}
			t.Error("AuditEvent missing from the CapabilityStatement")
		})
	})
}
