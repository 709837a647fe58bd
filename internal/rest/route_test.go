package rest

import (
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

func TestParseRoute(t *testing.T) {
	a := New(Config{Base: "http://x/fhir", ResourceTypes: []string{"Patient"}, NewID: func() string { return "id" }})
	tests := []struct {
		path string
		want route
		code fhir.Code
	}{
		{"", route{kind: routeRoot}, ""},
		{"/", route{kind: routeRoot}, ""},
		{"/metadata", route{kind: routeMetadata}, ""},
		{"/_history", route{kind: routeHistorySystem}, ""},
		{"/Patient", route{kind: routeType, typ: "Patient"}, ""},
		{"/Patient/", route{kind: routeType, typ: "Patient"}, ""},
		{"/Patient/_search", route{kind: routeSearch, typ: "Patient"}, ""},
		{"/Patient/_history", route{kind: routeHistoryType, typ: "Patient"}, ""},
		{"/Patient/a-1.b", route{kind: routeInstance, typ: "Patient", id: "a-1.b"}, ""},
		{"/Patient/1/_history", route{kind: routeHistoryInstance, typ: "Patient", id: "1"}, ""},
		{"/Patient/1/_history/3", route{kind: routeVersion, typ: "Patient", id: "1", vid: 3}, ""},
		{"/Unknown/1", route{}, fhir.NotFound},
		{"/patient/1", route{}, fhir.NotFound},
		{"/Patient/a_b", route{}, fhir.Invalid},
		{"/Patient/1/_history/0", route{}, fhir.NotFound},
		{"/Patient/1/_history/x", route{}, fhir.NotFound},
		{"/Patient/1/other", route{}, fhir.NotFound},
		{"/Patient/1/_history/1/more", route{}, fhir.NotFound},
		{"/Patient/1/_history/1/a/b/c", route{}, fhir.NotFound},
		{"/Patient/$everything", route{}, fhir.NotSupported},
		{"/$export", route{}, fhir.NotSupported},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := a.parseRoute(tt.path)
			if code := fhir.ErrorCode(err); code != tt.code {
				t.Fatalf("error code = %q (%v), want %q", code, err, tt.code)
			}
			if got != tt.want {
				t.Errorf("route = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAcceptsJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"application/fhir+json", true},
		{"application/json", true},
		{"application/fhir+json; charset=utf-8", true},
		{"APPLICATION/FHIR+JSON", true},
		{"*/*", true},
		{"application/*", true},
		{"text/html, application/xhtml+xml, */*;q=0.8", true},
		{"application/fhir+xml", false},
		{"application/fhir+xml, text/xml", false},
		{"application/fhir+json;q=0", false},
		{"application/fhir+json;q=0.0, application/xml", false},
		{"application/fhir+json;q=0.1", true},
		{"text/plain", false},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			if got := acceptsJSON(tt.accept); got != tt.want {
				t.Errorf("acceptsJSON(%q) = %v, want %v", tt.accept, got, tt.want)
			}
		})
	}
}

func TestParseIfMatch(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{`W/"3"`, 3, false},
		{`"12"`, 12, false},
		{` W/"1" `, 1, false},
		{`W/"0"`, 0, true},
		{`W/"x"`, 0, true},
		{`3`, 0, true},
		{`W/"`, 0, true},
		{`*`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseIfMatch(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseIfMatch(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	lu := time.Date(2024, 5, 6, 7, 8, 9, 500e6, time.UTC)
	v := &store.Version{VersionID: 4, LastUpdated: lu}
	tests := []struct {
		name, inm, ims string
		want           bool
	}{
		{"no conditions", "", "", false},
		{"matching tag", `W/"4"`, "", true},
		{"strong form", `"4"`, "", true},
		{"one of a list", `W/"1", W/"4"`, "", true},
		{"other tag", `W/"3"`, "", false},
		{"star", "*", "", true},
		{"If-None-Match wins over If-Modified-Since", `W/"3"`, "Tue, 07 May 2024 00:00:00 GMT", false},
		{"modified since", "", "Mon, 06 May 2024 07:08:08 GMT", false},
		{"same second", "", "Mon, 06 May 2024 07:08:09 GMT", true},
		{"FHIR instant in a Bundle", "", "2024-05-06T07:08:10Z", true},
		{"invalid date ignored", "", "yesterday", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notModified(tt.inm, tt.ims, v); got != tt.want {
				t.Errorf("notModified = %v, want %v", got, tt.want)
			}
		})
	}
}
