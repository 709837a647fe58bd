package rest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"smartfhir/internal/fhir"
)

// memberNames lists the top-level member names of a JSON object in order.
func memberNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		t.Fatal(err)
	}
	if err := fhir.CompactMembers(c.Bytes(), func(name string, _ []byte) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestShaperCopiesMembers checks the copying path of shaper.apply against
// the parsing one on the same bodies: the same members, in the same order,
// with the SUBSETTED tag, as valid JSON.
func TestShaperCopiesMembers(t *testing.T) {
	bodies := []string{
		`{"resourceType":"Patient","id":"a","meta":{"versionId":"2","tag":[{"code":"x"}]},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div>"},"gender":"female","_gender":{"extension":[{"url":"u","valueString":"s"}]},"name":[{"family":"Ünïcode \"q\""}],"birthDate":"1970"}`,
		`{"resourceType":"Patient","id":"b","gender":"male"}`,
		`{"resourceType":"Observation","id":"o","meta":{"lastUpdated":"2026-01-01T00:00:00Z"},"status":"final","code":{"text":"c"},"valueQuantity":{"value":1.5},"subject":{"reference":"Patient/a"}}`,
		`{"resourceType":"Patient","id":"c","we\"ird":1,"gender":"other"}`,
	}
	shapes := []shaper{
		{elements: []string{"gender"}},
		{elements: []string{"Observation.value", "id"}},
		{summary: "true"},
		{summary: "text"},
		{summary: "data"},
	}
	for _, body := range bodies {
		var head struct{ ResourceType string }
		if err := json.Unmarshal([]byte(body), &head); err != nil {
			t.Fatal(err)
		}
		for _, sh := range shapes {
			got, err := sh.apply(head.ResourceType, []byte(body))
			if err != nil {
				t.Fatalf("apply(%+v, %s): %v", sh, body, err)
			}
			want, err := shapeParsed(sh.keep(head.ResourceType), []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got) {
				t.Fatalf("apply(%+v) gave invalid JSON: %s", sh, got)
			}
			// The parsing path escapes "<" and ">" in strings, the
			// copying one keeps the stored text: compare values and order.
			var g, w any
			json.Unmarshal(got, &g)
			json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) || !slices.Equal(memberNames(t, got), memberNames(t, want)) {
				t.Errorf("apply(%+v, %s):\n got %s\nwant %s", sh, body, got, want)
			}
			if !bytes.Contains(got, []byte("SUBSETTED")) {
				t.Errorf("apply(%+v): no SUBSETTED tag in %s", sh, got)
			}
		}
	}
	// A body that is not compact takes the parsing path, with the same result.
	sh := shaper{elements: []string{"gender"}}
	got, err := sh.apply("Patient", []byte("{ \"resourceType\": \"Patient\",\n \"id\": \"s\", \"gender\": \"female\", \"name\": [] }"))
	if err != nil || !json.Valid(got) || bytes.Contains(got, []byte("name")) || !bytes.Contains(got, []byte(`"gender":"female"`)) {
		t.Errorf("spaced body: %s, %v", got, err)
	}
}

func TestWithSubsetted(t *testing.T) {
	for _, meta := range []string{
		``,
		`{}`,
		`{"versionId":"1"}`,
		`{"tag":[]}`,
		`{"versionId":"3","tag":[{"system":"s","code":"a"}],"security":[{"code":"R"}]}`,
		`{ "tag": [ {"code": "a"} ] }`,
	} {
		got := withSubsetted(json.RawMessage(meta))
		want := withSubsettedParsed(json.RawMessage(meta))
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("withSubsetted(%s) = %s: %v", meta, got, err)
		}
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) || !slices.Equal(memberNames(t, got), memberNames(t, want)) {
			t.Errorf("withSubsetted(%s):\n got %s\nwant %s", meta, got, want)
		}
	}
}
