package smart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// harness is an authorization server on an httptest server with a memory
// store.
type harness struct {
	t     *testing.T
	srv   *Server
	store *memStore
	ts    *httptest.Server
	clock *clock
	base  string
}

const redirect = "http://127.0.0.1:7777/callback"

func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(), clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	mux := http.NewServeMux()
	h.ts = httptest.NewServer(mux)
	t.Cleanup(h.ts.Close)
	h.base = h.ts.URL
	cfg := Config{Issuer: h.base, Store: h.store, Now: h.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(mux)
	h.srv = srv
	return h
}

func (h *harness) client(spec ClientSpec) (id, secret string) {
	h.t.Helper()
	if spec.Name == "" {
		spec.Name = "Test app"
	}
	if spec.RedirectURIs == nil && spec.Type != ConfidentialAsymmetric {
		spec.RedirectURIs = []string{redirect}
	}
	spec.Approve = true
	id, secret, err := h.srv.RegisterClient(context.Background(), spec)
	if err != nil {
		h.t.Fatal(err)
	}
	return id, secret
}

func (h *harness) user(spec UserSpec) {
	h.t.Helper()
	if spec.Password == "" {
		spec.Password = "correct horse"
	}
	if err := h.srv.AddUser(context.Background(), spec); err != nil {
		h.t.Fatal(err)
	}
}

// browser is a user agent with a cookie jar that stops at redirects to the
// app.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{h: h, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), h.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	u := resp.Request.URL
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && loc != "" {
		u, _ = url.Parse(loc)
	}
	return page{resp.StatusCode, u, resp.Header, string(body)}
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func csrf(p page) string {
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// pkce returns a verifier and its S256 challenge.
func pkce(seed string) (verifier, challenge string) {
	verifier = strings.Repeat(seed, 64)[:64]
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

type authz struct {
	clientID, scope, state, launch, aud, nonce string
	redirect                                   string
	challenge                                  string
	// noState leaves state out; otherwise an empty state is "st".
	noState bool
}

func (a authz) stateOrDefault() string {
	if a.state == "" {
		return "st"
	}
	return a.state
}

func (h *harness) authorizeURL(a authz) string {
	q := url.Values{"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.redirect}, "scope": {a.scope},
		"state": {a.stateOrDefault()}, "aud": {a.aud}, "code_challenge": {a.challenge}, "code_challenge_method": {"S256"}}
	if a.noState {
		q.Del("state")
	}
	if a.redirect == "" {
		q.Set("redirect_uri", redirect)
	}
	if a.aud == "" {
		q.Set("aud", h.base+"/fhir")
	}
	if a.launch != "" {
		q.Set("launch", a.launch)
	}
	if a.nonce != "" {
		q.Set("nonce", a.nonce)
	}
	return h.base + "/oauth/authorize?" + q.Encode()
}

// login drives the login page from an authorize answer.
func (b *browser) login(p page, username, password string) page {
	b.h.t.Helper()
	if p.url.Path != "/login" {
		b.h.t.Fatalf("authorize led to %s (status %d), want the login page: %s", p.url, p.status, p.body)
	}
	return b.post(b.h.base+"/login", url.Values{"username": {username}, "password": {password}, "csrf_token": {csrf(p)}})
}

// consent submits the consent form; scopes nil means every box as shown.
func (b *browser) consent(p page, decision string, scopes []string, patient string) page {
	b.h.t.Helper()
	if p.url.Path != "/consent" {
		b.h.t.Fatalf("at %s (status %d), want the consent page: %s", p.url, p.status, p.body)
	}
	if scopes == nil {
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]*)" checked`).FindAllStringSubmatch(p.body, -1) {
			scopes = append(scopes, html.UnescapeString(m[1]))
		}
	}
	form := url.Values{"decision": {decision}, "csrf_token": {csrf(p)}, "scope": scopes}
	if patient != "" {
		form.Set("patient", patient)
	}
	return b.post(b.h.base+"/consent", form)
}

// code runs a whole standalone authorization and returns the code.
func (h *harness) code(a authz, username string) string {
	h.t.Helper()
	b := h.browser()
	p := b.login(b.get(h.authorizeURL(a)), username, "correct horse")
	p = b.consent(p, "allow", nil, "")
	if p.status != http.StatusFound || p.url.Query().Get("code") == "" {
		h.t.Fatalf("consent answered %d %s, want a redirect with a code", p.status, p.url)
	}
	if got := p.url.Query().Get("state"); got != a.stateOrDefault() {
		h.t.Fatalf("state = %q, want %q", got, a.stateOrDefault())
	}
	return p.url.Query().Get("code")
}

// tokenReq posts to the token endpoint.
func (h *harness) tokenReq(form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	return h.postJSON("/oauth/token", form, basicID, basicSecret)
}

func (h *harness) postJSON(path string, form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	body, _ := io.ReadAll(resp.Body)
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			h.t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, out, resp.Header
}
