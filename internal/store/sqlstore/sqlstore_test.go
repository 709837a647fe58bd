package sqlstore

import (
	"net/url"
	"testing"
	"time"

	"smartfhir/internal/search"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		numbered bool
		in, want string
	}{
		{"question marks kept", false, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{"numbered in order", true, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"literal left alone", true, "SELECT '?' FROM t WHERE b = ?", "SELECT '?' FROM t WHERE b = $1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rebinder{numbered: tc.numbered}
			for range 2 { // the second call comes from the cache
				if got := r.rebind(tc.in); got != tc.want {
					t.Fatalf("rebind(%q): got %q, want %q", tc.in, got, tc.want)
				}
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		after int64
		total int
	}{{0, 0}, {1, 1}, {123456789, 42}} {
		after, total, ok := parseCursor(formatCursor(tc.after, tc.total))
		if !ok || after != tc.after || total != tc.total {
			t.Errorf("round trip of (%d, %d): got (%d, %d, %v)", tc.after, tc.total, after, total, ok)
		}
	}
	for _, bad := range []string{"", "h", "h1", "x1.2", "h-1.2", "h1.-2", "h1.2.3"} {
		if _, _, ok := parseCursor(bad); ok {
			t.Errorf("parseCursor(%q): got ok, want rejected", bad)
		}
	}
}

func TestCeilMicro(t *testing.T) {
	base := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{base, base.UnixMicro()},
		{base.Add(time.Nanosecond), base.UnixMicro() + 1},
		{base.Add(time.Microsecond), base.UnixMicro() + 1},
		{base.Add(-time.Nanosecond), base.UnixMicro()},
	} {
		if got := ceilMicro(tc.in); got != tc.want {
			t.Errorf("ceilMicro(%v): got %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestPatientTokenWalk checks which searches walk the patient's tokens
// (search_token_patient): a Patient named by the `patient` parameter and
// one token code; every other search keeps its plan.
func TestPatientTokenWalk(t *testing.T) {
	reg, err := search.NewRegistry(search.Config{Base: "http://example.org/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ, query string
		want       string // the parameter walked with the patient, "" for none
	}{
		{"Observation", "patient=p&category=laboratory", "category"},
		{"Observation", "patient=Patient/p&code=http://loinc.org|2339-0&date=ge2020", "code"},
		{"Observation", "date=ge2020&patient=p&status=final", "status"},
		{"Observation", "patient=p&code=|2339-0", "code"},
		{"Condition", "patient=p&clinical-status=active", "clinical-status"},
		{"Observation", "subject=Patient/p&category=laboratory", ""},     // not the patient parameter
		{"Observation", "subject:Group=g&category=laboratory", ""},       // not a Patient
		{"Observation", "patient=p&category=laboratory,vital-signs", ""}, // two codes
		{"Observation", "patient=p&category:not=laboratory", ""},
		{"Observation", "patient=p&category=http://terminology.hl7.org/CodeSystem/observation-category|", ""}, // a system alone
		{"Observation", "patient=p&category:text=lab", ""},
		{"Observation", "patient=p&date=ge2020", ""},
		{"Observation", "category=laboratory", ""},
	} {
		vals, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		q, _, err := reg.Parse(tc.typ, vals, true)
		if err != nil {
			t.Fatalf("%s?%s: %v", tc.typ, tc.query, err)
		}
		got := ""
		if i := patientTokenWalk(q.Where); i >= 0 {
			got = q.Where[i].(search.Exists).Param
		}
		if got != tc.want {
			t.Errorf("%s?%s walks the patient's %q tokens, want %q", tc.typ, tc.query, got, tc.want)
		}
	}
}
