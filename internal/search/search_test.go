package search

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r, err := NewRegistry(Config{Base: "http://example.org/fhir", Now: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// matchDate applies a date search value to one indexed range, as the store
// would, by evaluating the Cmp tree on the row.
func matchDate(t *testing.T, r *Registry, search string, lo, hi int64) bool {
	t.Helper()
	w, err := r.dateWhere(search)
	if err != nil {
		t.Fatalf("dateWhere(%q): %v", search, err)
	}
	return evalRow(w, map[Column]any{ColLow: lo, ColHigh: hi})
}

func evalRow(e Expr, row map[Column]any) bool {
	switch e := e.(type) {
	case And:
		for _, x := range e {
			if !evalRow(x, row) {
				return false
			}
		}
		return true
	case Or:
		for _, x := range e {
			if evalRow(x, row) {
				return true
			}
		}
		return false
	case Not:
		return !evalRow(e.X, row)
	case Cmp:
		switch v := row[e.Col].(type) {
		case int64:
			w := e.Value.(int64)
			return map[Op]bool{Eq: v == w, Ne: v != w, Lt: v < w, Le: v <= w, Gt: v > w, Ge: v >= w}[e.Op]
		case string:
			w, _ := e.Value.(string)
			switch e.Op {
			case Eq:
				return v == w
			case Prefix:
				return strings.HasPrefix(v, w)
			case Contains:
				return strings.Contains(v, w)
			}
		}
	}
	return false
}

// TestDateSemantics checks the prefixes against the examples of R4
// search.html#date and #prefix.
func TestDateSemantics(t *testing.T) {
	r := testRegistry(t)
	rng := func(s string) (int64, int64) {
		lo, hi, ok := dateRange(s)
		if !ok {
			t.Fatalf("dateRange(%q) failed", s)
		}
		return lo, hi
	}
	for _, tc := range []struct {
		search, value string
		want          bool
	}{
		// "[parameter]=eq2013-01-14 matches 2013-01-14T00:00 and
		// 2013-01-14T10:00 but not 2013-01-15T00:00".
		{"eq2013-01-14", "2013-01-14T00:00:00Z", true},
		{"eq2013-01-14", "2013-01-14T10:00:00Z", true},
		{"eq2013-01-14", "2013-01-15T00:00:00Z", false},
		// "ne2013-01-14 matches 2013-01-15T00:00 but not 2013-01-14T10:00".
		{"ne2013-01-14", "2013-01-15T00:00:00Z", true},
		{"ne2013-01-14", "2013-01-14T10:00:00Z", false},
		// "lt2013-01-14T10:00 includes 2013-01-14 (the range starts before)".
		{"lt2013-01-14T10:00:00Z", "2013-01-14", true},
		// "gt2013-01-14T10:00 includes 2013-01-14 (the range ends after)".
		{"gt2013-01-14T10:00:00Z", "2013-01-14", true},
		// "ge2013-03-14 includes 2013-03-14T00:00 and later".
		{"ge2013-03-14", "2013-03-14T00:00:00Z", true},
		{"ge2013-03-14", "2013-03-13T23:00:00Z", false},
		// "le2013-03-14 includes 2013-03-14 and earlier".
		{"le2013-03-14", "2013-03-14T23:59:59Z", true},
		{"le2013-03-14", "2013-03-15T00:00:00Z", false},
		// sa / eb: strictly after / before the whole range.
		{"sa2013-03-14", "2013-03-15T00:00:00Z", true},
		{"sa2013-03-14", "2013-03-14T12:00:00Z", false},
		{"eb2013-03-14", "2013-03-13T23:59:59Z", true},
		{"eb2013-03-14", "2013-03-14T00:00:00Z", false},
		// Offsets are honoured: 10:00+01:00 is 09:00Z.
		{"eq2013-01-14T09:00:00Z", "2013-01-14T10:00:00+01:00", true},
		{"gt2013-01-14T09:00:00Z", "2013-01-14T10:00:00+01:00", false},
		// A partial date covers its whole precision: 2013 is not within
		// January 2013.
		{"eq2013-01", "2013", false},
		{"eq2013", "2013-01", true},
		// Year 2000 is a valid year.
		{"eq2000", "2000-06-22T19:33:18-04:00", true},
		// ap: within a tenth of the distance to now (2024).
		{"ap2013-01-14", "2013-06-01", true},
		{"ap2013-01-14", "2020-06-01", false},
	} {
		lo, hi := rng(tc.value)
		if got := matchDate(t, r, tc.search, lo, hi); got != tc.want {
			t.Errorf("date=%s on %s = %v, want %v", tc.search, tc.value, got, tc.want)
		}
	}
}

// TestStringSemantics checks R4 search.html#string: "name=eve" matches
// "Eve" and "Evelyn" but not "Severine"; :exact is exact; :contains
// matches anywhere; accents and case are ignored by default.
func TestStringSemantics(t *testing.T) {
	for _, tc := range []struct {
		mod, search, value string
		want               bool
	}{
		{"", "eve", "Eve", true},
		{"", "eve", "Evelyn", true},
		{"", "eve", "Severine", false},
		{"exact", "Eve", "Eve", true},
		{"exact", "Eve", "eve", false},
		{"exact", "Eve", "Evelyn", false},
		{"contains", "eve", "Severine", true},
		{"contains", "eve", "Adam", false},
		{"", "zoe", "Zoë", true},
		{"", "MULLER", "Müller", true},
	} {
		w, err := stringWhere(tc.mod, tc.search)
		if err != nil {
			t.Fatal(err)
		}
		row := map[Column]any{ColNorm: normalize(tc.value), ColExact: tc.value}
		if got := evalRow(w, row); got != tc.want {
			t.Errorf("name:%s=%s on %q = %v, want %v", tc.mod, tc.search, tc.value, got, tc.want)
		}
	}
}

// TestTokenSemantics checks the four forms of R4 search.html#token, on the
// rows of a code (case-sensitive) and on those of a string-valued
// parameter, which the index writes lower-cased (fold) and which "is not
// case sensitive".
func TestTokenSemantics(t *testing.T) {
	row := func(system, code string) map[Column]any { return map[Column]any{ColSystem: system, ColCode: code} }
	str := func(value string) map[Column]any { return row("", foldCase(value)) }
	for _, tc := range []struct {
		search string
		fold   bool
		row    map[Column]any
		want   bool
	}{
		{"abc", false, row("http://x", "abc"), true},
		{"abc", false, row("", "abc"), true},
		{"abc", false, row("", "ABC"), false},
		{"ABC", false, row("http://x", "abc"), false},
		{"http://x|abc", false, row("http://x", "abc"), true},
		{"http://x|abc", false, row("http://y", "abc"), false},
		{"http://x|ABC", false, row("http://x", "abc"), false},
		{"|abc", false, row("", "abc"), true},
		{"|abc", false, row("http://x", "abc"), false},
		{"http://x|", false, row("http://x", "anything"), true},
		{`a\|b`, false, row("", "a|b"), true},
		{`urn:x\|y|c`, false, row("urn:x|y", "c"), true},
		{"abc", true, str("ABC"), true},
		{"ABC", true, str("abc"), true},
		{"Ab.C@X.org", true, str("ab.c@x.ORG"), true},
		{"abd", true, str("ABC"), false},
		{"|ABC", true, str("abc"), true},
		{"http://x|abc", true, str("abc"), false},
		{`A\|B`, true, str("a|b"), true},
	} {
		w, err := tokenWhere(tc.search, tc.fold)
		if err != nil {
			t.Fatal(err)
		}
		if got := evalRow(w, tc.row); got != tc.want {
			t.Errorf("code=%s (fold %v) on %v = %v, want %v", tc.search, tc.fold, tc.row, got, tc.want)
		}
	}
}

func TestParseReportsUnknownAndStrict(t *testing.T) {
	r := testRegistry(t)
	q, issues, err := r.Parse("Patient", url.Values{"nonsense": {"1"}, "gender": {"male"}, "name:fuzzy": {"x"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Where) != 1 || len(issues) != 2 {
		t.Errorf("lenient: %d conditions and %d issues, want 1 and 2", len(q.Where), len(issues))
	}
	if _, _, err := r.Parse("Patient", url.Values{"nonsense": {"1"}}, true); err == nil {
		t.Error("strict: an unknown parameter was accepted")
	}
	if _, _, err := r.Parse("Patient", url.Values{"birthdate": {"yesterday"}}, false); err == nil {
		t.Error("a malformed date was accepted")
	}
	q, _, err = r.Parse("Patient", url.Values{"gender": {`male\,female`}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := q.Where[0].(Exists); !ok || e.Where.(Cmp).Value != "male,female" {
		t.Errorf(`an escaped comma split the value: %#v`, q.Where[0])
	}
	// A _sort with a key it cannot sort by is reported and ignored whole,
	// not applied up to that key.
	q, issues, err = r.Parse("Patient", url.Values{"_sort": {"birthdate,nonsense"}}, false)
	if err != nil || len(q.Sort) != 0 || len(issues) != 1 {
		t.Errorf("_sort=birthdate,nonsense: sort %v, issues %v, %v; want none, one issue", q.Sort, issues, err)
	}
}

func TestIndexNeedsItsOwnType(t *testing.T) {
	r := testRegistry(t)
	if _, err := r.Index("Patient", []byte(`{"resourceType":"Observation"}`)); err == nil {
		t.Error("a body of another type was indexed")
	}
	if _, err := r.Index("Patient", []byte(`{"resourceType":"Patient"} {}`)); err == nil {
		t.Error("trailing data was accepted")
	}
}

// TestImportsNoIO enforces DESIGN.md §3: search imports neither net/http
// nor database/sql.
func TestImportsNoIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || dep == "database/sql" {
			t.Errorf("package search depends on %s", dep)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"gender=male", "name:exact=Eve&birthdate=ge2013-01-01", "code=http://loinc.org|1234-5,9999",
		"_has:Observation:patient:code=1", "subject:Patient.name=x", "code-value-quantity=a|b$gt5||mg",
		"_sort=-date,_id&_count=3&_include=Observation:patient&_revinclude:iterate=Provenance:target",
		`identifier=a\|b\,c`, "value-quantity=ap5.4e2|http://unitsofmeasure.org|mg", "url:above=http://a/b/c",
	} {
		f.Add("Observation", s)
		f.Add("Patient", s)
	}
	r := testRegistry(f)
	f.Fuzz(func(t *testing.T, typ, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, _, err := r.Parse(typ, params, false)
		if err == nil && q.Type != typ {
			t.Errorf("Parse(%q) gave a query on %q", typ, q.Type)
		}
	})
}

var benchPatient = []byte(`{"resourceType":"Patient","id":"p1","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]}],"identifier":[{"system":"urn:mrn","value":"12345"}],"name":[{"family":"Chalmers","given":["Peter","James"]}],"telecom":[{"system":"phone","value":"555-1234"}],"gender":"male","birthDate":"1974-12-25","address":[{"line":["534 Erewhon St"],"city":"PleasantVille","state":"Vic","postalCode":"3999"}]}`)

var benchObservation = []byte(`{"resourceType":"Observation","id":"o1","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},"subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2013-04-02T10:30:10+01:00","issued":"2013-04-03T15:30:10+01:00","valueQuantity":{"value":6.3,"unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}}`)

func BenchmarkIndex(b *testing.B) {
	r := testRegistry(b)
	for _, tc := range []struct {
		typ  string
		body []byte
	}{{"Patient", benchPatient}, {"Observation", benchObservation}} {
		b.Run(tc.typ, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Index(tc.typ, tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFingerprintIsStable: the fingerprint decides whether a start
// re-indexes everything, so it must be the same for the same parameters.
func TestFingerprintIsStable(t *testing.T) {
	first, err := NewRegistry(Config{Base: "http://example.org/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		r, err := NewRegistry(Config{Base: "http://example.org/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Fingerprint() != first.Fingerprint() {
			t.Fatalf("fingerprint %s, then %s, for the same parameter set", first.Fingerprint(), r.Fingerprint())
		}
	}
}

// TestCombinedWithPatient: the parameters US Core 6.1.0 searches together
// with `patient` (its server CapabilityStatement's combinations), and no
// others.
func TestCombinedWithPatient(t *testing.T) {
	r := testRegistry(t)
	for _, tc := range []struct {
		typ, code string
		want      bool
	}{
		{"Observation", "category", true},
		{"Observation", "code", true},
		{"Observation", "date", true},
		{"Observation", "status", true},
		{"Encounter", "class", true}, // listed as class+patient
		{"Encounter", "discharge-disposition", true},
		{"MedicationRequest", "authoredon", true},
		{"Goal", "target-date", true},
		{"Condition", "asserted-date", true}, // a US Core parameter, not an R4 one
		{"Observation", "patient", false},
		{"Observation", "combo-code", false},
		{"Observation", "value-quantity", false},
		{"Observation", "code-value-quantity", false},
		{"Encounter", "identifier", false},
		{"Claim", "status", false},
		{"Patient", "name", false}, // combined with birthdate or gender, not with patient
		{"Nope", "status", false},
	} {
		if got := r.CombinedWithPatient(tc.typ, tc.code); got != tc.want {
			t.Errorf("CombinedWithPatient(%s, %s) = %v, want %v", tc.typ, tc.code, got, tc.want)
		}
	}
}
