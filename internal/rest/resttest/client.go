package resttest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type client struct {
	base string
	hc   *http.Client
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; path is relative to the base unless absolute. hdr
// holds header name/value pairs.
func (c *client) do(t *testing.T, method, path, body string, hdr ...string) *response {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		u = c.base + "/" + strings.TrimPrefix(path, "/")
		if path == "" {
			u = c.base
		}
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	req.Header.Set("Accept", "application/fhir+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// obj decodes the body as a JSON object.
func (r *response) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %.300s", err, r.body)
	}
	return m
}

func (r *response) wantStatus(t *testing.T, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body: %.500s", r.status, want, r.body)
	}
}

// wantOutcome checks an error response: the status, FHIR JSON, and an
// OperationOutcome with at least one issue. It returns the issues.
func (r *response) wantOutcome(t *testing.T, status int) []any {
	t.Helper()
	r.wantStatus(t, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type = %q, want application/fhir+json", ct)
	}
	m := r.obj(t)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("resourceType = %v, want OperationOutcome; body: %.300s", m["resourceType"], r.body)
	}
	issues, _ := m["issue"].([]any)
	if len(issues) == 0 {
		t.Fatalf("OperationOutcome has no issue: %s", r.body)
	}
	return issues
}

// str walks a decoded JSON value by member names and array indexes.
func str(v any, path ...any) string {
	x := get(v, path...)
	switch s := x.(type) {
	case string:
		return s
	case float64:
		b, _ := json.Marshal(s)
		return string(b)
	case nil:
		return ""
	}
	b, _ := json.Marshal(x)
	return string(b)
}

func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func length(v any, path ...any) int {
	a, _ := get(v, path...).([]any)
	return len(a)
}

func lastModified(t *testing.T, r *response) time.Time {
	t.Helper()
	lm, err := http.ParseTime(r.header.Get("Last-Modified"))
	if err != nil {
		t.Fatalf("Last-Modified %q: %v", r.header.Get("Last-Modified"), err)
	}
	return lm
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (c *client) hasIssueAbout(issues []any, word string) bool {
	for _, is := range issues {
		if strings.Contains(strings.ToLower(mustJSON(is)), strings.ToLower(word)) {
			return true
		}
	}
	return false
}

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
