package rest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSearchsetRender checks the hand-assembled Bundle against what
// encoding/json makes of the same value, and that links keep their "&".
func TestSearchsetRender(t *testing.T) {
	total := 2
	b := searchsetBundle{ResourceType: "Bundle", ID: "b1", Type: "searchset", Total: &total,
		Link: []link{{"self", "http://x/fhir/Observation?code=1&patient=2"}, {"next", "http://x/fhir/Observation?_cursor=abc&code=1"}}}
	for _, mode := range []string{"match", "include", "outcome"} {
		e := searchEntry{FullURL: "http://x/fhir/Patient/" + mode, Resource: json.RawMessage(`{"resourceType":"Patient","id":"` + mode + `","text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; b</div>"}}`)}
		if mode == "outcome" {
			e.FullURL = ""
		}
		e.Search.Mode = mode
		b.Entry = append(b.Entry, e)
	}
	// Each Bundle renders into the buffer the one before it was rendered
	// into, as pages do (pageBuffer): nothing of the earlier one remains.
	var dst []byte
	for _, bundle := range []searchsetBundle{b, {ResourceType: "Bundle", ID: "empty", Type: "searchset", Link: b.Link[:1]}, b} {
		got, err := bundle.render(dst)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(bundle)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("render made invalid JSON: %v\n%s", err, got)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("render:\n%s\nencoding/json:\n%s", got, want)
		}
		if !strings.Contains(string(got), "?code=1&patient=2") && bundle.ID == "b1" {
			t.Errorf("links are escaped: %s", got)
		}
		dst = got[:0]
	}
}

// appendJSONString writes what the encoder writes, with or without its
// fast path.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"http://localhost:8080/fhir/Observation/a-1.b",
		"https://ehr.example/fhir?x=1&y=<2>/Patient/p",
		`http://x/"quoted"`, `http://x/back\slash`, "http://x/tab\there", "http://x/\x7f",
		"http://x/é", "http://x/\u2028", "",
	} {
		want, err := marshalRaw(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSONString([]byte("prefix:"), s)
		if err != nil || string(got) != "prefix:"+string(want) {
			t.Errorf("appendJSONString(%q) = %s, %v; want prefix:%s", s, got, err, want)
		}
	}
}
