package rest_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

type observed struct {
	mu  sync.Mutex
	got []string
}

func (o *observed) observe(interaction string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, fmt.Sprintf("%s %d", interaction, status))
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
	obs := &observed{}
	srv, _ := newServer(t, 1<<20, obs)
	base := srv.URL + "/fhir"
	ct := []string{"Content-Type", "application/fhir+json"}
	p := `{"resourceType":"Patient","id":"o1"}`
	do(t, "PUT", base+"/Patient/o1", p, ct...)
	do(t, "GET", base+"/Patient/o1", "")
	do(t, "GET", base+"/Patient/o1/_history/1", "")
	do(t, "PATCH", base+"/Patient/o1", `[]`, "Content-Type", "application/json-patch+json")
	do(t, "GET", base+"/Patient/o1/_history", "")
	do(t, "GET", base+"/Patient/_history", "")
	do(t, "GET", base+"/_history", "")
	do(t, "POST", base+"/Patient", p, ct...)
	do(t, "GET", base+"/Patient?name=x", "")
	do(t, "GET", base+"?x=1", "")
	do(t, "GET", base+"/metadata", "")
	do(t, "POST", base, `{"resourceType":"Bundle","type":"batch"}`, ct...)
	do(t, "POST", base, `{"resourceType":"Bundle","type":"transaction"}`, ct...)
	do(t, "DELETE", base+"/Patient/o1", "")
	do(t, "GET", base+"/Unknown/1", "")
	do(t, "DELETE", base+"/Patient", "")
	want := []string{"update 201", "read 200", "vread 200", "patch 200", "history-instance 200", "history-type 200",
		"history-system 200", "create 201", "search-type 200", "search-system 400", "capabilities 200", "batch 200",
		"transaction 200", "delete 204", "unknown 404", "delete 405"}
	if !slices.Equal(obs.got, want) {
		t.Errorf("observed\n got %v\nwant %v", obs.got, want)
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
	// ETag and Last-Modified (2 strings + 2 slices) and wraps the writer.
	if allocs > 10 {
		t.Errorf("read by id makes %.0f allocations, want at most 10", allocs)
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
