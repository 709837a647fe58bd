package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"smartfhir/internal/rest/resttest"
)

// TestFHIRConformance runs the REST conformance suite against the real
// server on every backend.
func TestFHIRConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		s := startServer(t, dbArgs...)
		resttest.Run(t, s.BaseURL+"/fhir")
	})
}

func TestHealthAndMetrics(t *testing.T) {
	s := startServer(t)
	res, err := http.Get(s.BaseURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var health struct{ Status string }
	if res.StatusCode != 200 || json.Unmarshal(body, &health) != nil || health.Status != "ok" {
		t.Fatalf("GET /healthz = %d %s, want 200 with status ok", res.StatusCode, body)
	}
	if id := res.Header.Get("X-Request-Id"); id == "" {
		t.Error("no X-Request-Id on the response")
	}

	req, _ := http.NewRequest("GET", s.BaseURL+"/fhir/metadata", nil)
	req.Header.Set("X-Request-Id", "my-request-1")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got := res.Header.Get("X-Request-Id"); got != "my-request-1" {
		t.Errorf("X-Request-Id = %q, want the one the client sent", got)
	}

	res, err = http.Get(s.BaseURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`smartfhir_http_requests_total{code="200",interaction="capabilities"} 1`,
		`smartfhir_http_requests_total{code="200",interaction="healthz"} 1`,
		`smartfhir_http_request_duration_seconds_bucket{interaction="capabilities"`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestCORSOnFHIRAPI(t *testing.T) {
	s := startServer(t)
	req, _ := http.NewRequest("OPTIONS", s.BaseURL+"/fhir/Patient", nil)
	req.Header.Set("Origin", "https://app.example.org")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight = %d %v, want 204 allowing any origin and Authorization", res.StatusCode, res.Header)
	}
	res, err = http.Get(s.BaseURL + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("GET /fhir/metadata has no Access-Control-Allow-Origin")
	}
}
