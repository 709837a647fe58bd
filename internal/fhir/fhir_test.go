package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStamp(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.FixedZone("x", 3600))
	tests := []struct {
		name, in, want string
	}{
		{"adds id and meta first, keeps member order",
			`{"name":[{"family":"Doe"}], "resourceType":"Patient","active":true}`,
			`{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-05-06T06:08:09.123Z"},"name":[{"family":"Doe"}],"active":true}`},
		{"replaces client id and meta values, keeps other meta",
			`{"resourceType":"Patient","id":"other","meta":{"profile":["http://x"],"versionId":"99","lastUpdated":"2000-01-01T00:00:00Z","tag":[{"code":"a"}]}}`,
			`{"resourceType":"Patient","id":"p1","meta":{"profile":["http://x"],"versionId":"3","lastUpdated":"2024-05-06T06:08:09.123Z","tag":[{"code":"a"}]}}`},
		{"compacts whitespace inside values",
			"{\"resourceType\":\"Basic\",\"code\":{ \"text\" : \"a b\" }}",
			`{"resourceType":"Basic","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-05-06T06:08:09.123Z"},"code":{"text":"a b"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Stamp([]byte(tt.in), "p1", 3, at)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Stamp:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"a":1,"a":2}`, `{"resourceType":"Patient","meta":[]}`, `{} {}`, `{"a":`} {
		if _, err := Stamp([]byte(bad), "x", 1, at); !IsCode(err, Invalid) {
			t.Errorf("Stamp(%s) error = %v, want an Invalid error", bad, err)
		}
	}
}

func TestReadHeader(t *testing.T) {
	h, err := ReadHeader([]byte(`{"id":"a-1","resourceType":"Observation"}`))
	if err != nil || h.ResourceType != "Observation" || h.ID != "a-1" {
		t.Errorf("ReadHeader = %+v, %v", h, err)
	}
	for _, bad := range []string{`{"id":"x"}`, `{"resourceType":3}`, `{"resourceType":"Patient","id":1}`, `nope`} {
		if _, err := ReadHeader([]byte(bad)); !IsCode(err, Invalid) {
			t.Errorf("ReadHeader(%s) error = %v, want Invalid", bad, err)
		}
	}
}

// TestScanHeader holds the quick header reader to ReadHeader on compact
// bodies, and checks that it reads only up to the id: each body is given
// again with a repeated member after it, which ReadHeader refuses and the
// preparation of the body would.
func TestScanHeader(t *testing.T) {
	for _, tc := range []struct{ in, typ, id string }{
		{`{"resourceType":"Patient","id":"p1","name":[{"family":"X"}]}`, "Patient", "p1"},
		{`{"meta":{"id":"inner","resourceType":"Bundle"},"text":"a \"}\" b","n":-1.5e3,"b":true,"resourceType":"Observation","id":"o-2"}`, "Observation", "o-2"},
		{`{"id":"c","resourceType":"Condition"}`, "Condition", "c"},
		{`{"resourceType":"Encounter","status":[]}`, "Encounter", ""},
		{`{"contained":[{"resourceType":"Medication","id":"m"}],"resourceType":"MedicationRequest"}`, "MedicationRequest", ""},
		{`{"resource\u0054ype":"Pat\u0069ent","id":"a\u002db"}`, "Patient", "a-b"},
	} {
		h, err := ScanHeader([]byte(tc.in))
		if err != nil || h.ResourceType != tc.typ || h.ID != tc.id {
			t.Errorf("ScanHeader(%s) = %+v, %v; want %s/%s", tc.in, h, err, tc.typ, tc.id)
		}
		if want, err := ReadHeader([]byte(tc.in)); err != nil || want != h {
			t.Errorf("ReadHeader(%s) = %+v, %v; ScanHeader %+v", tc.in, want, err, h)
		}
		dup := tc.in[:len(tc.in)-1] + `,"z":1,"z":2}`
		if _, err := ReadHeader([]byte(dup)); err == nil {
			t.Fatalf("ReadHeader(%s) accepted a repeated member", dup)
		}
		if h, err := ScanHeader([]byte(dup)); err != nil || h.ResourceType != tc.typ || h.ID != tc.id {
			t.Errorf("ScanHeader(%s) = %+v, %v: it left the body to ReadHeader", dup, h, err)
		}
	}
	// Everything it cannot read itself gets ReadHeader's answer.
	for _, in := range []string{`{"id":"x"}`, `{"resourceType":3}`, `{"resourceType":"Patient","id":1}`, `[1]`, `"Patient"`,
		`{"resourceType":"Patient","resourceType":"Group"}`, ` { "resourceType" : "Patient" } `, `{"resourceType":"Patient","b":1,"b":2}x`} {
		got, gotErr := ScanHeader([]byte(in))
		want, wantErr := ReadHeader([]byte(in))
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("ScanHeader(%s) = %+v, %v; ReadHeader %+v, %v", in, got, gotErr, want, wantErr)
		}
	}
}

// FuzzScanHeader holds ScanHeader to ReadHeader on compact JSON: the same
// header whenever ReadHeader reads one, and an error only when ReadHeader
// has one. On any input it must not panic.
func FuzzScanHeader(f *testing.F) {
	for _, s := range []string{`{"resourceType":"Patient","id":"p1"}`, ` { "id" : "x", "resourceType" : "A\"" } `, `{"a":[{"resourceType":"B"}],"resourceType":"C"}`, `{"resourceType":"P","resourceType":"Q"}`, `[]`, `{"id":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ScanHeader(data)
		var b bytes.Buffer
		if json.Compact(&b, data) != nil {
			return
		}
		data = b.Bytes()
		got, gotErr := ScanHeader(data)
		want, wantErr := ReadHeader(data)
		switch {
		case wantErr == nil && (gotErr != nil || got != want):
			t.Fatalf("ScanHeader(%q) = %+v, %v; ReadHeader %+v", data, got, gotErr, want)
		case gotErr != nil && fmt.Sprint(gotErr) != fmt.Sprint(wantErr):
			t.Fatalf("ScanHeader(%q) error %v; ReadHeader %v", data, gotErr, wantErr)
		}
	})
}

func TestParseDateTime(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		in        string
		low, high time.Time
		prec      Precision
	}{
		{"2020", time.Date(2020, 1, 1, 0, 0, 0, 0, utc), time.Date(2021, 1, 1, 0, 0, 0, 0, utc), Year},
		{"2020-02", time.Date(2020, 2, 1, 0, 0, 0, 0, utc), time.Date(2020, 3, 1, 0, 0, 0, 0, utc), Month},
		{"2020-02-29", time.Date(2020, 2, 29, 0, 0, 0, 0, utc), time.Date(2020, 3, 1, 0, 0, 0, 0, utc), Day},
		{"2020-02-29T10:00:00Z", time.Date(2020, 2, 29, 10, 0, 0, 0, utc), time.Date(2020, 2, 29, 10, 0, 1, 0, utc), Second},
		{"2020-02-29T10:00:00.5+02:00", time.Date(2020, 2, 29, 8, 0, 0, 500_000_000, utc), time.Date(2020, 2, 29, 8, 0, 0, 600_000_000, utc), Second},
		{"2020-02-29T10:00:00.1234567891Z", time.Date(2020, 2, 29, 10, 0, 0, 123456789, utc), time.Date(2020, 2, 29, 10, 0, 0, 123456790, utc), Second},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDateTime(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			low, high := d.Range()
			if !low.Equal(tt.low) || !high.Equal(tt.high) || d.Precision != tt.prec {
				t.Errorf("got [%v, %v) precision %d, want [%v, %v) precision %d", low, high, d.Precision, tt.low, tt.high, tt.prec)
			}
		})
	}
	for _, bad := range []string{"", "20", "2020-13", "2020-02-30", "2020-02-29T10:00", "2020-02-29T10:00:00", "2020-02-29T25:00:00Z", "2020-1-1", "0000", "2020-02-29 10:00:00Z"} {
		if _, err := ParseDateTime(bad); err == nil {
			t.Errorf("ParseDateTime(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzParseDateTime(f *testing.F) {
	for _, s := range []string{"2020", "2020-02-29T10:00:00.5+02:00", "1999-12", "2020-02-29T23:59:60Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDateTime(s)
		if err != nil {
			return
		}
		low, high := d.Range()
		if !high.After(low) {
			t.Errorf("%q: empty range [%v, %v)", s, low, high)
		}
	})
}

func TestParseReference(t *testing.T) {
	base := "https://ehr.example.org/fhir"
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"Patient/123", "Patient/123", true},
		{"Observation/a.b-c/_history/7", "Observation/a.b-c/_history/7", true},
		{base + "/Patient/9", "Patient/9", true},
		{"https://other.example.org/fhir/Patient/9", "", false},
		{"#contained", "", false},
		{"urn:uuid:0f8c3a5e-1111-4a1b-9999-abcdefabcdef", "", false},
		{"Patient?identifier=x|y", "", false},
		{"Patient/123/_history/0", "", false},
		{"patient/123", "", false},
	}
	for _, tt := range tests {
		r, ok := ParseReference(tt.in, base)
		if ok != tt.ok || (ok && r.String() != tt.want) {
			t.Errorf("ParseReference(%q) = %v, %v; want %q, %v", tt.in, r, ok, tt.want, tt.ok)
		}
	}
}

func TestErrorsMapOnce(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{Errorf(Invalid, "bad"), 400, "invalid"},
		{Errorf(NotFound, "no"), 404, "not-found"},
		{fmt.Errorf("wrapped: %w", Errorf(Gone, "deleted")), 410, "deleted"},
		{Errorf(PreconditionFailed, "etag"), 412, "conflict"},
		{Errorf(TooLarge, "big"), 413, "too-long"},
		{errors.New("disk on fire"), 500, "exception"},
	}
	for _, tt := range tests {
		if got := Status(ErrorCode(tt.err)); got != tt.status {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.status)
		}
		var oo struct {
			ResourceType string
			Issue        []Issue
		}
		if err := json.Unmarshal(ErrorOutcome(tt.err), &oo); err != nil {
			t.Fatal(err)
		}
		if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Code != tt.code {
			t.Errorf("ErrorOutcome(%v) = %+v, want one issue with code %q", tt.err, oo, tt.code)
		}
		if strings.Contains(string(ErrorOutcome(tt.err)), "disk on fire") {
			t.Error("an internal error's detail leaked into the OperationOutcome")
		}
	}
}

func TestValidID(t *testing.T) {
	long := strings.Repeat("a", 64)
	for s, want := range map[string]bool{
		"a": true, "A-1.b": true, "0": true, long: true, "8a748927-a436-4b74-9e95-b08b76a34799": true,
		"": false, long + "b": false, "a_b": false, "a b": false, "é": false, "a/b": false, "a\n": false,
	} {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}
