package bundle

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// fakeMatcher answers searches from a table keyed by "Type?query" and
// counts the calls.
type fakeMatcher struct {
	ids   map[string][]string
	calls map[string]int
}

func (m *fakeMatcher) Match(ctx context.Context, tx store.Tx, typ, query string, limit int) ([]string, error) {
	if m.calls == nil {
		m.calls = map[string]int{}
	}
	m.calls[typ+"?"+query]++
	if strings.HasPrefix(query, "bogus=") {
		return nil, fhir.Errorf(fhir.Invalid, "unknown search parameter bogus")
	}
	ids := m.ids[typ+"?"+query]
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

func newMatcher() *fakeMatcher {
	return &fakeMatcher{ids: map[string][]string{
		"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1": {"p1"},
		"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|2": {"p2", "p3"},
		"Organization?identifier=o|1":                              {"org1"},
	}}
}

func obsWithPerformer(ref string) string {
	return `{"resourceType":"Observation","performer":[{"reference":"` + ref + `"}]}`
}

func txOf(kind string, entries ...string) []byte {
	return []byte(`{"resourceType":"Bundle","type":"` + kind + `","entry":[` + strings.Join(entries, ",") + `]}`)
}

func postEntry(fullURL, res string) string {
	s := `{"resource":` + res + `,"request":{"method":"POST","url":"` + resourceType(res) + `"}}`
	if fullURL != "" {
		s = `{"fullUrl":"` + fullURL + `",` + s[1:]
	}
	return s
}

func resourceType(res string) string {
	h, err := fhir.ReadHeader([]byte(res))
	if err != nil {
		panic(err)
	}
	return h.ResourceType
}

func TestConditionalReferences(t *testing.T) {
	const one = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1"
	tests := []struct {
		name     string
		ref      string
		wantRef  string
		wantCode fhir.Code
	}{
		{"one match becomes a literal reference", one, "Practitioner/p1", ""},
		{"no match fails the transaction", "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9", "", fhir.PreconditionFailed},
		{"several matches fail the transaction", "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|2", "", fhir.PreconditionFailed},
		{"an unknown parameter fails the transaction", "Practitioner?bogus=1", "", fhir.Invalid},
		{"a relative literal reference is left alone", "Practitioner/p9", "Practitioner/p9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter(), Match: newMatcher()}
			_, _, err := p.Process(context.Background(), txOf("transaction", postEntry("", obsWithPerformer(tt.ref))), Representation)
			if tt.wantCode != "" {
				if !fhir.IsCode(err, tt.wantCode) || !strings.Contains(err.Error(), "Bundle.entry[0]") {
					t.Fatalf("err = %v, want %s naming Bundle.entry[0]", err, tt.wantCode)
				}
				// Only a reference that matched nothing may resolve later
				// (the importer tries such transactions again).
				if _, noMatch := errors.AsType[*NoMatchError](err); noMatch != strings.HasPrefix(tt.name, "no match") {
					t.Errorf("err = %v: NoMatchError %v", err, noMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(rec.calls[0].Resource), obsWithPerformer(tt.wantRef); got != want {
				t.Errorf("stored\n %s\nwant %s", got, want)
			}
		})
	}
}

func TestConditionalReferencesAreLookedUpOncePerUnit(t *testing.T) {
	const one = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1"
	m := newMatcher()
	rec := &recorder{}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter(), Match: m}
	body := txOf("transaction",
		postEntry("", obsWithPerformer(one)),
		postEntry("", obsWithPerformer(one)),
		postEntry("", `{"resourceType":"Practitioner"}`),
		postEntry("", obsWithPerformer(one)))
	if _, _, err := p.Process(context.Background(), body, Representation); err != nil {
		t.Fatal(err)
	}
	// The Practitioner written in between may change the answer: the
	// third reference is looked up again.
	if got, want := m.calls[one], 2; got != want {
		t.Errorf("%d searches for %s, want %d", got, one, want)
	}
	for _, i := range []int{0, 1, 3} {
		if !strings.Contains(string(rec.calls[i].Resource), `"Practitioner/p1"`) {
			t.Errorf("entry %d stored as %s", rec.calls[i].Index, rec.calls[i].Resource)
		}
	}
}

func TestConditionalReferenceInBatchFailsOnlyItsEntry(t *testing.T) {
	rec := &recorder{}
	p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter(), Match: newMatcher()}
	out, err := p.Run(context.Background(), txOf("batch",
		postEntry("", obsWithPerformer("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9")),
		postEntry("", obsWithPerformer("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !fhir.IsCode(out.Errs[0], fhir.PreconditionFailed) || out.Results[0] != nil {
		t.Errorf("entry 0: err %v, want PreconditionFailed", out.Errs[0])
	}
	if out.Errs[1] != nil || out.Results[1] == nil || out.Results[1].Status != http.StatusCreated {
		t.Errorf("entry 1: err %v, result %+v; want it created", out.Errs[1], out.Results[1])
	}
}

func TestIfNoneExistMatchRedirectsReferences(t *testing.T) {
	const orgURN = "urn:uuid:11111111-2222-3333-4444-555555555555"
	org := `{"fullUrl":"` + orgURN + `","resource":{"resourceType":"Organization"},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=o|1"}}`
	for _, tt := range []struct {
		name    string
		matches []string
		want    string
	}{
		{"a match stands for the entry", []string{"org1"}, "Organization/org1"},
		{"no match: the entry's own new id", nil, "Organization/id2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMatcher()
			m.ids["Organization?identifier=o|1"] = tt.matches
			rec := &recorder{}
			p := &Processor{Store: fakeStore{}, Exec: rec, NewID: counter(), Match: m}
			// The referring entry comes first in processing order too.
			body := txOf("transaction", postEntry("", `{"resourceType":"Patient","managingOrganization":{"reference":"`+orgURN+`"}}`), org)
			if _, _, err := p.Process(context.Background(), body, Representation); err != nil {
				t.Fatal(err)
			}
			if got := string(rec.calls[0].Resource); !strings.Contains(got, `"`+tt.want+`"`) {
				t.Errorf("Patient stored as %s, want a reference to %s", got, tt.want)
			}
			if got := rec.calls[1].IfNoneExist; got != "identifier=o|1" {
				t.Errorf("executor got ifNoneExist %q", got)
			}
		})
	}
}

func TestSkipInvalid(t *testing.T) {
	const bad = "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"
	body := txOf("transaction",
		postEntry("", `{"resourceType":"Patient"}`),
		postEntry(bad, `{"resourceType":"Observation","status":"nope"}`),
		postEntry("", `{"resourceType":"Provenance","target":[{"reference":"`+bad+`"}]}`),
		postEntry("", `{"resourceType":"Condition"}`),
		`{"request":{"method":"PUT","url":"Patient/x"}}`)
	newProcessor := func() (*Processor, *recorder) {
		rec := &recorder{fail: map[int]error{1: &fhir.Error{Code: fhir.Invalid, Issues: []fhir.Issue{{Severity: "error", Code: "value",
			Diagnostics: "bad code", Expression: []string{"Observation.status"}}}}}}
		return &Processor{Store: fakeStore{}, Exec: rec, NewID: counter()}, rec
	}

	t.Run("without it the transaction fails", func(t *testing.T) {
		p, _ := newProcessor()
		_, err := p.Run(context.Background(), body, Options{})
		ee, ok := errors.AsType[*EntryError](err)
		if !ok || ee.Index != 4 || !fhir.IsCode(err, fhir.Invalid) {
			t.Fatalf("err = %v, want an Invalid EntryError for entry 4 (no resource)", err)
		}
	})
	t.Run("with it the invalid entries and their dependants are left out", func(t *testing.T) {
		p, rec := newProcessor()
		out, err := p.Run(context.Background(), body, Options{SkipInvalid: true})
		if err != nil {
			t.Fatal(err)
		}
		for i, wantSkipped := range []bool{false, true, true, false, true} {
			if got := out.Errs[i] != nil; got != wantSkipped {
				t.Errorf("entry %d skipped = %v (%v), want %v", i, got, out.Errs[i], wantSkipped)
			}
			if got := out.Results[i] != nil; got == wantSkipped {
				t.Errorf("entry %d has a result = %v, want %v", i, got, !wantSkipped)
			}
		}
		if msg := out.Errs[2].Error(); !strings.Contains(msg, "Bundle.entry[1], which was skipped") {
			t.Errorf("dependant's error = %q, want it to name the skipped entry", msg)
		}
		if issues := fhir.OutcomeIssues(out.Errs[1]); len(issues) != 1 || issues[0].Expression[0] != "Observation.status" {
			t.Errorf("invalid entry's issues = %+v, want the element path kept", issues)
		}
		last := rec.calls[len(rec.calls)-2:]
		if last[0].Index != 0 || last[1].Index != 3 {
			t.Errorf("last attempt ran entries %d and %d, want 0 and 3", last[0].Index, last[1].Index)
		}
	})
	t.Run("other failures still fail the transaction", func(t *testing.T) {
		p, rec := newProcessor()
		rec.fail[3] = fhir.Errorf(fhir.PreconditionFailed, "no")
		if _, err := p.Run(context.Background(), body, Options{SkipInvalid: true}); !fhir.IsCode(err, fhir.PreconditionFailed) {
			t.Fatalf("err = %v, want PreconditionFailed", err)
		}
	})
}

func TestConditionalRefSyntax(t *testing.T) {
	for _, tt := range []struct {
		ref    string
		wantOK bool
	}{
		{"Practitioner?identifier=a|b", true},
		{"Patient/1", false},
		{"http://x/Patient?identifier=a", false},
		{"?identifier=a", false},
		{"Patient?", false},
		{"patient?x=1", false},
		{"urn:uuid:x?y", false},
	} {
		if _, _, ok := conditionalRef(tt.ref); ok != tt.wantOK {
			t.Errorf("conditionalRef(%q) ok = %v, want %v", tt.ref, ok, tt.wantOK)
		}
	}
}

// preparer is a recorder that prepares entries: what it prepared is the
// resource it was shown, so a test can compare it with what the unit of
// work executes.
type preparer struct {
	recorder
	prepared map[int]string // by entry index
}

func (p *preparer) Prepare(req *Request) any {
	if p.prepared == nil {
		p.prepared = map[int]string{}
	}
	p.prepared[req.Index] = string(req.Resource)
	return string(req.Resource)
}

func TestPrepareGuessesReferences(t *testing.T) {
	const (
		one    = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1"
		nobody = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9"
		orgURN = "urn:uuid:11111111-2222-3333-4444-555555555555"
	)
	m := newMatcher()
	ex := &preparer{}
	p := &Processor{Store: fakeStore{}, Exec: ex, NewID: counter(), Match: m}
	_, err := p.Run(context.Background(), txOf("transaction",
		// 0: a bundle reference and a conditional one, both guessed right.
		postEntry("", `{"resourceType":"Patient","managingOrganization":{"reference":"`+orgURN+`"},"generalPractitioner":[{"reference":"`+one+`"}]}`),
		// 1: the conditional create finds org1 inside the unit, not the
		// new id guessed before it.
		`{"fullUrl":"`+orgURN+`","resource":{"resourceType":"Organization"},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=o|1"}}`,
		// 2: a PUT is prepared too.
		`{"resource":{"resourceType":"Patient","id":"a","generalPractitioner":[{"reference":"`+one+`"}]},"request":{"method":"PUT","url":"Patient/a"}}`,
		// 3: a DELETE has nothing to prepare.
		`{"request":{"method":"DELETE","url":"Patient/b"}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.calls[one]; got != 2 {
		t.Errorf("%s searched %d times, want once before the unit and once in it", one, got)
	}
	if _, ok := ex.prepared[3]; ok {
		t.Errorf("DELETE entry prepared")
	}
	want := map[int]string{
		0: `{"resourceType":"Patient","managingOrganization":{"reference":"Organization/id2"},"generalPractitioner":[{"reference":"Practitioner/p1"}]}`,
		1: `{"resourceType":"Organization"}`,
		2: `{"resourceType":"Patient","id":"a","generalPractitioner":[{"reference":"Practitioner/p1"}]}`,
	}
	for i, w := range want {
		if ex.prepared[i] != w {
			t.Errorf("entry %d prepared as\n %s\nwant %s", i, ex.prepared[i], w)
		}
	}
	for _, c := range ex.calls {
		if c.Index == 0 {
			// The unit saw org1: the executor gets what was prepared, and
			// must not use it for these bytes.
			if got := string(c.Resource); !strings.Contains(got, `"Organization/org1"`) {
				t.Errorf("entry 0 executed as %s", got)
			}
			if c.Prepared != want[0] {
				t.Errorf("entry 0 carries Prepared %v", c.Prepared)
			}
		}
		if c.Index == 2 && c.Prepared != want[2] {
			t.Errorf("entry 2 carries Prepared %v, want %s", c.Prepared, want[2])
		}
	}
	if len(ex.calls) != 4 {
		t.Errorf("%d entries executed, want 4", len(ex.calls))
	}

	// A conditional reference without a match is not guessed; the unit
	// reports it.
	ex = &preparer{}
	p.Exec = ex
	_, err = p.Run(context.Background(), txOf("transaction", postEntry("", obsWithPerformer(nobody))), Options{})
	if fhir.ErrorCode(err) != fhir.PreconditionFailed {
		t.Errorf("Run: %v, want PreconditionFailed", err)
	}
	if len(ex.prepared) != 0 {
		t.Errorf("prepared %v; the reference matches nothing", ex.prepared)
	}
}
