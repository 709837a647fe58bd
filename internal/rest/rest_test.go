package rest_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/rest"
	"smartfhir/internal/rest/resttest"
)

// testValidator checks JSON well-formedness and one required binding,
// enough for the suite to see the validator's issues come through.
type testValidator struct{}

func (testValidator) Resource(raw []byte) error {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fhir.Errorf(fhir.Invalid, "not JSON: %v", err)
	}
	rt, _ := m["resourceType"].(string)
	if g, ok := m["gender"]; ok && rt == "Patient" {
		switch g {
		case "male", "female", "other", "unknown":
		default:
			return &fhir.Error{Code: fhir.Invalid, Issues: []fhir.Issue{{Severity: "error", Code: "code-invalid",
				Diagnostics: fmt.Sprintf("%v is not in the required value set", g), Expression: []string{"Patient.gender"}}}}
		}
	}
	return nil
}

var types = []string{"Patient", "Observation", "Device", "Substance", "Basic", "Location", "Organization", "Provenance", "Binary", "Group", "Practitioner"}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// observed receives what Config.Observe reports. The API reports after the
// response is written, so a client may hold the response before the report
// is made: next waits for it.
type observed struct {
	ch chan string
}

func (o *observed) observe(interaction string, status int, _ time.Duration) {
	o.ch <- fmt.Sprintf("%s %d", interaction, status)
}

func (o *observed) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-o.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no interaction observed within 10 s")
		return ""
	}
}

func newServer(t testing.TB, maxBody int64, obs *observed) (*httptest.Server, *memStore) {
	st := newMemStore()
	cfg := rest.Config{
		Store: st, Validator: testValidator{}, ResourceTypes: types, NewID: newID,
		MaxBodyBytes: maxBody, DefaultCount: 10, MaxCount: 100, Search: testRegistry(),
	}
	cfg.Software.Name, cfg.Software.Version = "smartfhir", "test"
	if obs != nil {
		cfg.Observe = obs.observe
	}
	var api *rest.API
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	cfg.Base = srv.URL + "/fhir"
	api = rest.New(cfg)
	mux.Handle("/fhir/", api)
	mux.Handle("/fhir", api)
	t.Cleanup(srv.Close)
	return srv, st
}

func TestConformance(t *testing.T) {
	srv, _ := newServer(t, 1<<20, nil)
	resttest.Run(t, srv.URL+"/fhir")
}

func do(t *testing.T, method, url, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestBodyTooLarge(t *testing.T) {
	srv, _ := newServer(t, 200, nil)
	big := `{"resourceType":"Patient","name":[{"text":"` + strings.Repeat("x", 300) + `"}]}`
	tests := []struct {
		name    string
		chunked bool
	}{{"declared length", false}, {"chunked", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/fhir/Patient", strings.NewReader(big))
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/fhir+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var oo map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&oo)
			if resp.StatusCode != 413 || oo["resourceType"] != "OperationOutcome" {
				t.Errorf("got %d %v, want 413 with an OperationOutcome", resp.StatusCode, oo["resourceType"])
			}
		})
	}
}

func TestObserveInteractions(t *testing.T) {
	obs := &observed{ch: make(chan string, 64)} // room for unexpected reports: the handler never blocks
	srv, _ := newServer(t, 1<<20, obs)
	base := srv.URL + "/fhir"
	ct := []string{"Content-Type", "application/fhir+json"}
	p := `{"resourceType":"Patient","id":"o1"}`
	tests := []struct {
		method, path, body string
		hdr                []string
		want               string
	}{
		{"PUT", "/Patient/o1", p, ct, "update 201"},
		{"GET", "/Patient/o1", "", nil, "read 200"},
		{"GET", "/Patient/o1/_history/1", "", nil, "vread 200"},
		{"PATCH", "/Patient/o1", `[]`, []string{"Content-Type", "application/json-patch+json"}, "patch 200"},
		{"GET", "/Patient/o1/_history", "", nil, "history-instance 200"},
		{"GET", "/Patient/_history", "", nil, "history-type 200"},
		{"GET", "/_history", "", nil, "history-system 200"},
		{"POST", "/Patient", p, ct, "create 201"},
		{"GET", "/Patient?name=x", "", nil, "search-type 200"},
		{"GET", "?x=1", "", nil, "search-system 400"},
		{"GET", "/metadata", "", nil, "capabilities 200"},
		{"POST", "", `{"resourceType":"Bundle","type":"batch"}`, ct, "batch 200"},
		{"POST", "", `{"resourceType":"Bundle","type":"transaction"}`, ct, "transaction 200"},
		{"DELETE", "/Patient/o1", "", nil, "delete 204"},
		{"GET", "/Unknown/1", "", nil, "unknown 404"},
		{"DELETE", "/Patient", "", nil, "delete 405"},
	}
	for _, tt := range tests {
		do(t, tt.method, base+tt.path, tt.body, tt.hdr...)
		if got := obs.next(t); got != tt.want {
			t.Errorf("%s %s observed as %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestReadAllocations(t *testing.T) {
	// Measured through the handler directly, without the network.
	st := newMemStore()
	api := rest.New(rest.Config{Base: "http://x/fhir", Store: st, ResourceTypes: types, NewID: newID})
	body := `{"resourceType":"Patient","id":"a1","gender":"male"}`
	req := httptest.NewRequest("PUT", "/fhir/Patient/a1", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	api.ServeHTTP(httptest.NewRecorder(), req)
	read := httptest.NewRequest("GET", "/fhir/Patient/a1", nil)
	read.Header.Set("Accept", "application/fhir+json")
	w := &discard{h: http.Header{}}
	allocs := testing.AllocsPerRun(200, func() {
		clear(w.h)
		api.ServeHTTP(w, read)
	})
	if w.status != 200 {
		t.Fatalf("read status %d", w.status)
	}
	// The fake store's Read clones the version (1); the handler sets
	// ETag and Last-Modified (2 strings + 2 slices) and Content-Length (a
	// slice; the string of a length under 100 is not allocated) and wraps
	// the writer.
	if allocs > 11 {
		t.Errorf("read by id makes %.0f allocations, want at most 11", allocs)
	}
}

type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }

func BenchmarkRead(b *testing.B) {
	st := newMemStore()
	api := rest.New(rest.Config{Base: "http://x/fhir", Store: st, ResourceTypes: types, NewID: newID})
	req := httptest.NewRequest("PUT", "/fhir/Patient/a1", strings.NewReader(`{"resourceType":"Patient","id":"a1","gender":"male"}`))
	req.Header.Set("Content-Type", "application/fhir+json")
	api.ServeHTTP(httptest.NewRecorder(), req)
	read := httptest.NewRequest("GET", "/fhir/Patient/a1", nil)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		api.ServeHTTP(w, read)
	}
}

// httpServer serves api at /fhir on a test server and returns its URL.
func httpServer(t testing.TB, api *rest.API) string {
	mux := http.NewServeMux()
	mux.Handle("/fhir/", api)
	mux.Handle("/fhir", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestContentLength: reads carry their length, not chunked framing, even
// past net/http's 2 KB buffer; HEAD gives the same length and no body.
func TestContentLength(t *testing.T) {
	srv, _ := newServer(t, 1<<20, nil)
	body := `{"resourceType":"Patient","id":"big","name":[{"text":"` + strings.Repeat("x", 5000) + `"}]}`
	if resp := do(t, "PUT", srv.URL+"/fhir/Patient/big", body, "Content-Type", "application/fhir+json"); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	resp, err := http.Get(srv.URL + "/fhir/Patient/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %d, %v", resp.StatusCode, err)
	}
	if resp.ContentLength != int64(len(got)) || len(got) < 5000 || len(resp.TransferEncoding) > 0 {
		t.Fatalf("GET: Content-Length %d, Transfer-Encoding %v, body of %d bytes", resp.ContentLength, resp.TransferEncoding, len(got))
	}
	head := do(t, "HEAD", srv.URL+"/fhir/Patient/big", "")
	if head.StatusCode != 200 || head.ContentLength != int64(len(got)) {
		t.Fatalf("HEAD: %d, Content-Length %d, want %d", head.StatusCode, head.ContentLength, len(got))
	}
}
