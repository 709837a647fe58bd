package storetest

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// checkFinds runs each query on typ and compares the ids found, in any
// order, with want.
func checkFinds(t *testing.T, reg *search.Registry, s store.Store, typ string, cases []findCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			got := sortedIDs(find(t, reg, s, typ, tc.query))
			if want := sortedIDs(tc.want); !slices.Equal(got, want) {
				t.Errorf("%s?%s = %v, want %v", typ, tc.query, got, want)
			}
		})
	}
}

type findCase struct {
	query string
	want  []string
}

// testSearchMeta checks _security, a token on meta.security (a Coding),
// and _source, a uri on meta.source: exact and case-sensitive (R4
// search.html#uri), with :below.
func testSearchMeta(t *testing.T, reg *search.Registry, s store.Store) {
	const conf, act = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	create(t, s,
		`{"resourceType":"Patient","id":"p1","meta":{"security":[{"system":"`+conf+`","code":"R"}],"source":"http://example.org/src"}}`,
		`{"resourceType":"Patient","id":"p2","meta":{"security":[{"system":"`+act+`","code":"HTEST"},{"system":"`+conf+`","code":"N"}],"source":"http://example.org/src/child"}}`,
		`{"resourceType":"Patient","id":"p3","meta":{"security":[{"code":"R"}],"source":"http://example.org/SRC"}}`,
		`{"resourceType":"Patient","id":"p4","meta":{"tag":[{"system":"`+conf+`","code":"R"}]}}`,
	)
	checkFinds(t, reg, s, "Patient", []findCase{
		{"_security=R", []string{"p1", "p3"}},
		{"_security=" + conf + "|R", []string{"p1"}},
		{"_security=|R", []string{"p3"}},
		{"_security=" + conf + "|", []string{"p1", "p2"}},
		{"_security=R,HTEST", []string{"p1", "p2", "p3"}},
		{"_security=" + act + "|N", nil}, // system and code of different codings
		{"_security:not=R", []string{"p2", "p4"}},
		{"_security:not=" + act + "|HTEST", []string{"p1", "p3", "p4"}},
		{"_security:missing=true", []string{"p4"}}, // a tag is not a security label
		{"_source=http://example.org/src", []string{"p1"}},
		{"_source=http://example.org/SRC", []string{"p3"}},
		{"_source=http://example.org/sr", nil},
		{"_source:below=http://example.org/src", []string{"p1", "p2"}},
		{"_source:missing=true", []string{"p4"}},
	})
}

// testSearchTokenForms checks the four forms of a token value (R4
// search.html#token): code, system|code, |code (a code without a
// system) and system| (any code of the system), on a Coding
// (Encounter.class), a CodeableConcept (Observation.code, also walked
// through the patient's tokens) and an Identifier (Patient.identifier).
func testSearchTokenForms(t *testing.T, reg *search.Registry, s store.Store) {
	const act, loinc = "http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://loinc.org"
	create(t, s,
		`{"resourceType":"Encounter","id":"e1","status":"finished","class":{"system":"`+act+`","code":"AMB"}}`,
		`{"resourceType":"Encounter","id":"e2","status":"finished","class":{"code":"AMB"}}`,
		`{"resourceType":"Encounter","id":"e3","status":"finished","class":{"system":"urn:other","code":"AMB"}}`,
		`{"resourceType":"Encounter","id":"e4","status":"finished","class":{"system":"`+act+`","code":"EMER"}}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"`+loinc+`","code":"1234-5"}]},"subject":{"reference":"Patient/px"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"code":"1234-5"}]},"subject":{"reference":"Patient/px"}}`,
		`{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"urn:local","code":"1234-5"},{"system":"`+loinc+`","code":"9999-9"}]},"subject":{"reference":"Patient/px"}}`,
		`{"resourceType":"Observation","id":"o4","status":"final","code":{"text":"no coding"},"subject":{"reference":"Patient/px"}}`,
		`{"resourceType":"Patient","id":"pa","identifier":[{"system":"urn:mrn","value":"1"}]}`,
		`{"resourceType":"Patient","id":"pb","identifier":[{"value":"1"}]}`,
		`{"resourceType":"Patient","id":"pc","identifier":[{"system":"urn:ssn","value":"1"}]}`,
		`{"resourceType":"Patient","id":"pd","identifier":[{"system":"urn:mrn","value":"2"}]}`,
	)
	t.Run("Coding", func(t *testing.T) {
		checkFinds(t, reg, s, "Encounter", []findCase{
			{"class=AMB", []string{"e1", "e2", "e3"}},
			{"class=" + act + "|AMB", []string{"e1"}},
			{"class=|AMB", []string{"e2"}},
			{"class=" + act + "|", []string{"e1", "e4"}},
			{"class:not=" + act + "|AMB", []string{"e2", "e3", "e4"}},
			{"class:not=|AMB", []string{"e1", "e3", "e4"}},
			{"class:not=" + act + "|", []string{"e2", "e3"}},
		})
	})
	t.Run("CodeableConcept", func(t *testing.T) {
		checkFinds(t, reg, s, "Observation", []findCase{
			{"code=1234-5", []string{"o1", "o2", "o3"}},
			{"code=" + loinc + "|1234-5", []string{"o1"}},
			{"code=|1234-5", []string{"o2"}},
			{"code=" + loinc + "|", []string{"o1", "o3"}},
			{"code=urn:local|9999-9", nil}, // system and code of different codings
			{"code:not=" + loinc + "|1234-5", []string{"o2", "o3", "o4"}},
			{"patient=px&code=|1234-5", []string{"o2"}},
			{"patient=px&code=" + loinc + "|", []string{"o1", "o3"}},
			{"patient=Patient/px&code=1234-5", []string{"o1", "o2", "o3"}},
		})
	})
	t.Run("Identifier", func(t *testing.T) {
		checkFinds(t, reg, s, "Patient", []findCase{
			{"identifier=1", []string{"pa", "pb", "pc"}},
			{"identifier=urn:mrn|1", []string{"pa"}},
			{"identifier=|1", []string{"pb"}},
			{"identifier=urn:mrn|", []string{"pa", "pd"}},
		})
	})
}

// testSearchLastUpdated checks _lastUpdated (R4 search.html#date, on the
// instant meta.lastUpdated) with each prefix, on full instants and on
// partial values, using the times the store gave: a, then b a few
// milliseconds later, then c in a later second than b.
func testSearchLastUpdated(t *testing.T, reg *search.Registry, s store.Store) {
	ctx := context.Background()
	at := map[string]time.Time{}
	for _, id := range []string{"a", "b", "c"} {
		if id == "c" {
			time.Sleep(time.Until(at["b"].Truncate(time.Second).Add(time.Second + 5*time.Millisecond)))
		}
		create(t, s, `{"resourceType":"Patient","id":"`+id+`"}`)
		v, err := s.Read(ctx, "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		at[id] = v.LastUpdated
		time.Sleep(3 * time.Millisecond)
	}
	if !at["a"].Before(at["b"]) || at["b"].Truncate(time.Second).Equal(at["c"].Truncate(time.Second)) {
		t.Fatalf("lastUpdated a %v, b %v, c %v: want a before b, c in a later second", at["a"], at["b"], at["c"])
	}
	ms := func(id string) string { return at[id].UTC().Format("2006-01-02T15:04:05.000Z") }
	sec := func(id string) string { return at[id].UTC().Format("2006-01-02T15:04:05Z") }
	b5 := at["b"].In(time.FixedZone("", 5*3600)).Format("2006-01-02T15:04:05.000-07:00")
	day, month, year := at["c"].UTC().Format("2006-01-02"), at["a"].UTC().Format("2006-01"), at["a"].UTC().Format("2006")
	all := []string{"a", "b", "c"}
	checkFinds(t, reg, s, "Patient", []findCase{
		{"_lastUpdated=" + ms("b"), []string{"b"}},
		{"_lastUpdated=eq" + ms("b"), []string{"b"}},
		{"_lastUpdated=" + url.QueryEscape(b5), []string{"b"}}, // the same instant at +05:00
		{"_lastUpdated=gt" + ms("b"), []string{"c"}},
		{"_lastUpdated=ge" + ms("b"), []string{"b", "c"}},
		{"_lastUpdated=lt" + ms("b"), []string{"a"}},
		{"_lastUpdated=le" + ms("b"), []string{"a", "b"}},
		{"_lastUpdated=ne" + ms("b"), []string{"a", "c"}},
		{"_lastUpdated=lt" + ms("b") + ",gt" + ms("b"), []string{"a", "c"}},
		{"_lastUpdated=ge" + ms("a") + "&_lastUpdated=le" + ms("b"), []string{"a", "b"}},
		{"_lastUpdated=ap" + ms("b"), all}, // ±a tenth of the time from now, a day at least
		// A second holds every instant in it: gt is after its end, le
		// before its end.
		{"_lastUpdated=gt" + sec("b"), []string{"c"}},
		{"_lastUpdated=le" + sec("b"), []string{"a", "b"}},
		{"_lastUpdated=" + sec("c"), []string{"c"}},
		{"_lastUpdated=ge" + sec("c"), []string{"c"}},
		{"_lastUpdated=lt" + sec("c"), []string{"a", "b"}},
		{"_lastUpdated=le" + sec("c"), all},
		{"_lastUpdated=gt" + sec("c"), nil},
		{"_lastUpdated=le" + day, all},
		{"_lastUpdated=gt" + day, nil},
		{"_lastUpdated=ge" + month, all},
		{"_lastUpdated=lt" + month, nil},
		{"_lastUpdated=ge" + year, all},
		{"_lastUpdated=lt" + year, nil},
	})
}

// testSearchTotalModes checks _total=none, estimate and accurate (R4
// search.html#total): none gives no total (-1), and the store answers
// estimate as accurate (search.TotalEstimate), so both give the exact
// count, whatever the page size, for a search by token, one walked
// through a reference and one with no condition.
func testSearchTotalModes(t *testing.T, reg *search.Registry, s store.Store) {
	create(t, s,
		`{"resourceType":"Patient","id":"a","gender":"male"}`,
		`{"resourceType":"Patient","id":"b","gender":"male"}`,
		`{"resourceType":"Patient","id":"c","gender":"female"}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Observation","id":"o3","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/b"}}`,
	)
	for _, tc := range []struct {
		typ, query string
		n          int
	}{
		{"Patient", "gender=male", 2},
		{"Patient", "", 3},
		{"Patient", "gender=other", 0},
		{"Observation", "patient=a", 2},
	} {
		for _, count := range []int{0, 1, 10} {
			for mode, want := range map[string]int{"none": -1, "estimate": tc.n, "accurate": tc.n} {
				query := tc.query + "&_total=" + mode
				if res := page(t, reg, s, tc.typ, query, "", count); res.Total != want {
					t.Errorf("%s?%s with _count=%d: Total %d, want %d", tc.typ, query, count, res.Total, want)
				}
			}
		}
	}
}
