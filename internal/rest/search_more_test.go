package rest_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"smartfhir/internal/rest"
)

// TestSearchSummaryText checks _summary=text (R4 search.html#summary):
// each match keeps only text, id, meta and the top-level mandatory
// elements (Observation.status and code are 1..1; the JSON twin of a
// kept primitive, _status, stays with it), and its meta keeps the tags it
// had and gains SUBSETTED.
func TestSearchSummaryText(t *testing.T) {
	base := summaryServer(t)
	for _, body := range []string{
		`{"resourceType":"Observation","meta":{"tag":[{"system":"urn:t","code":"keep"}]},` +
			`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Weight 70 kg</div>"},` +
			`"status":"final","_status":{"extension":[{"url":"urn:x","valueString":"s"}]},` +
			`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],` +
			`"code":{"text":"Weight"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2020-01-01",` +
			`"valueQuantity":{"value":70,"unit":"kg"},"note":[{"text":"n"}]}`,
		`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">P</div>"},` +
			`"gender":"female","name":[{"family":"Text"}],"birthDate":"1970"}`,
		`{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"aspirin"},` +
			`"subject":{"reference":"Patient/p"},"authoredOn":"2020-01-01","dosageInstruction":[{"text":"daily"}]}`,
		`{"resourceType":"Provenance","target":[{"reference":"Patient/p"}],"occurredDateTime":"2020-01-01","recorded":"2020-01-01T00:00:00Z",` +
			`"agent":[{"who":{"reference":"Practitioner/x"}}],"reason":[{"text":"r"}]}`,
	} {
		resp := do(t, http.MethodPost, base+"/"+resourceType(t, body), body, "Content-Type", "application/fhir+json")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d", resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		typ  string
		want []string
	}{
		{"Observation", []string{"_status", "code", "id", "meta", "resourceType", "status", "text"}},
		{"Patient", []string{"id", "meta", "resourceType", "text"}}, // no top-level element of Patient is mandatory
		// A mandatory choice (medication[x], 1..1) stays in its chosen type.
		{"MedicationRequest", []string{"id", "intent", "medicationCodeableConcept", "meta", "resourceType", "status", "subject"}},
		{"Provenance", []string{"agent", "id", "meta", "recorded", "resourceType", "target"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			status, b := getBundle(t, http.MethodGet, base+"/"+tc.typ+"?_summary=text", "")
			if status != http.StatusOK || len(b.Entry) != 1 {
				t.Fatalf("status %d with %d entries, want 200 with 1", status, len(b.Entry))
			}
			var members map[string]json.RawMessage
			if err := json.Unmarshal(b.Entry[0].Resource, &members); err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(members)); !slices.Equal(got, tc.want) {
				t.Errorf("members = %v, want %v", got, tc.want)
			}
			var meta struct {
				Tag []struct{ System, Code string }
			}
			if err := json.Unmarshal(members["meta"], &meta); err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, tag := range meta.Tag {
				codes = append(codes, tag.Code)
			}
			want := []string{"SUBSETTED"}
			if tc.typ == "Observation" {
				want = []string{"keep", "SUBSETTED"}
			}
			if !slices.Equal(codes, want) {
				t.Errorf("meta.tag codes = %v, want %v", codes, want)
			}
		})
	}
}

// TestSearchTotalEstimate checks that _total=estimate gives Bundle.total
// (the stores answer it as accurate) and _total=none gives none.
func TestSearchTotalEstimate(t *testing.T) {
	base := newSearchServer(t) // three male Patients, one female; pages of 2
	for query, want := range map[string]int{
		"gender=male&_total=estimate": 3,
		"gender=male&_total=accurate": 3,
		"_total=estimate":             4,
		"gender=male&_total=none":     -1,
	} {
		_, b := getBundle(t, http.MethodGet, base+"/Patient?"+query, "")
		got := -1
		if b.Total != nil {
			got = *b.Total
		}
		if got != want {
			t.Errorf("Patient?%s: total %d, want %d (-1: none)", query, got, want)
		}
	}
}

// summaryServer serves the test store, with MedicationRequest among its
// types, at the returned base.
func summaryServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := rest.Config{
		Store: newMemStore(), Validator: testValidator{}, ResourceTypes: append(slices.Clone(types), "MedicationRequest"),
		NewID: newID, MaxBodyBytes: 1 << 20, DefaultCount: 10, MaxCount: 100, Search: testRegistry(),
		Base: srv.URL + "/fhir",
	}
	mux.Handle("/fhir/", rest.New(cfg))
	return cfg.Base
}

func resourceType(t *testing.T, body string) string {
	t.Helper()
	var r struct{ ResourceType string }
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	return r.ResourceType
}
