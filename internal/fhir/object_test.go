package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseObject(t *testing.T) {
	in := "{ \"a\" : 1 , \"b\\u0022q\":\"x}\\\"{,\" ,\"c\":{\"d\":[1,{\"e\":\"]\"}]},\"f\":[],\"g\":null,\"h\":-1.5e3,\"i\":true}"
	obj, err := ParseObject([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Object{
		{"a", json.RawMessage(`1`)},
		{`b"q`, json.RawMessage(`"x}\"{,"`)},
		{"c", json.RawMessage(`{"d":[1,{"e":"]"}]}`)},
		{"f", json.RawMessage(`[]`)},
		{"g", json.RawMessage(`null`)},
		{"h", json.RawMessage(`-1.5e3`)},
		{"i", json.RawMessage(`true`)},
	}
	if !reflect.DeepEqual(obj, want) {
		t.Errorf("ParseObject:\n got %q\nwant %q", obj, want)
	}
	for _, bad := range []string{``, `[]`, `"s"`, `{`, `{"a":1,"a":2}`, `{"a":1}x`, `{"a":1} {}`, `{"a" 1}`, `{,}`} {
		if _, err := ParseObject([]byte(bad)); err == nil {
			t.Errorf("ParseObject(%q) succeeded, want an error", bad)
		}
	}
}

// TestParseObjectManyMembers covers both ways of finding a repeated
// member name: in turn for a few members, by a map past 32.
func TestParseObjectManyMembers(t *testing.T) {
	for _, n := range []int{3, 32, 33, 40} {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"m%d":%d,`, i, i)
		}
		ok := strings.TrimSuffix(b.String(), ",") + "}"
		if obj, err := ParseObject([]byte(ok)); err != nil || len(obj) != n {
			t.Errorf("%d members: %d, %v", n, len(obj), err)
		}
		dup := b.String() + `"m1":0}`
		if _, err := ParseObject([]byte(dup)); err == nil || !strings.Contains(err.Error(), `duplicate JSON member "m1"`) {
			t.Errorf("%d members and m1 again: %v, want a duplicate", n, err)
		}
	}
}

func TestPreparedStampMatchesStamp(t *testing.T) {
	raw := []byte(`{"meta":{"tag":[{"code":"x"}]},"resourceType":"Observation","status":"final","id":"old","code":{"text":"t"}}`)
	at := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	p, err := Prepare(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.ResourceType != "Observation" || p.ID != "old" {
		t.Errorf("header = %+v", p.Header)
	}
	got := p.Stamp("n1", 2, at)
	want := `{"resourceType":"Observation","id":"n1","meta":{"tag":[{"code":"x"}],"versionId":"2","lastUpdated":"2025-01-02T03:04:05.006Z"},"status":"final","code":{"text":"t"}}`
	if string(got) != want {
		t.Errorf("Stamp:\n got %s\nwant %s", got, want)
	}
	// Stamping twice from one Prepared gives independent results.
	if again := p.Stamp("n1", 3, at); bytes.Equal(again, got) || !json.Valid(again) {
		t.Errorf("second Stamp = %s", again)
	}
}

// FuzzParseObject checks ParseObject against encoding/json: whatever it
// accepts, encoding/json reads as an object with the same members and
// values; whatever valid object with unique names it refuses is a bug.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `[1,"]",{"a":[2]}]`, `{"a":1}`, `{"a":"\"}"}`, `{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9"}`, ` { "x" : [ ] } `, `{"a":1,"a":2}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// On any input, the compact-only scanner errs or not, but never
		// panics.
		_ = CompactMembers(data, func(string, []byte) error { return nil })
		_ = CompactElements(data, func(int, []byte) error { return nil })
		obj, err := ParseObject(data)
		var m map[string]json.RawMessage
		stdErr := json.Unmarshal(data, &m)
		if err != nil {
			if stdErr == nil && m != nil && uniqueNames(data) && utf8.Valid(data) {
				t.Fatalf("ParseObject(%q) = %v, but encoding/json reads an object", data, err)
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatalf("ParseObject(%q) accepted invalid UTF-8", data)
		}
		if stdErr != nil || m == nil {
			t.Fatalf("ParseObject(%q) accepted what encoding/json refuses: %v", data, stdErr)
		}
		if len(obj) != len(m) {
			t.Fatalf("ParseObject(%q): %d members, encoding/json %d", data, len(obj), len(m))
		}
		for _, mem := range obj {
			var a, b any
			json.Unmarshal(mem.Value, &a)
			json.Unmarshal(m[mem.Name], &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("ParseObject(%q): member %q = %s, encoding/json %s", data, mem.Name, mem.Value, m[mem.Name])
			}
		}
	})
}

// uniqueNames reports whether the top-level object in data has no
// repeated member names, by decoding it token by token.
func uniqueNames(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := tok.(string)
		if seen[k] {
			return false
		}
		seen[k] = true
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return false
		}
	}
	return true
}
