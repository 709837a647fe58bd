package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// The FHIR API needs a bearer token on every request. The end-to-end tests
// predate that and call it with plain http.Get and http.DefaultClient, so
// TestMain puts a transport in front of http.DefaultTransport that adds a
// real token, obtained from the running server by client_credentials, to
// every request to a test server's /fhir that carries no Authorization
// header. Tests of authentication itself use rawClient, which adds nothing.
func TestMain(m *testing.M) {
	http.DefaultTransport = &tokenTransport{base: http.DefaultTransport}
	os.Exit(m.Run())
}

// rawClient sends requests exactly as built: no token is added.
var rawClient = &http.Client{Transport: rawTransport}

var rawTransport = http.DefaultTransport.(*http.Transport).Clone()

type tokenTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	// sources holds a token source per test server host (127.0.0.1:port).
	sources map[string]oauth2.TokenSource
}

func (tt *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" && strings.HasPrefix(r.URL.Path, "/fhir") {
		tt.mu.Lock()
		ts := tt.sources[r.URL.Host]
		tt.mu.Unlock()
		if ts != nil {
			tok, err := ts.Token()
			if err != nil {
				return nil, err
			}
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
	}
	return tt.base.RoundTrip(r)
}

// serve registers the token source of the server at baseURL.
func (tt *tokenTransport) serve(baseURL string, ts oauth2.TokenSource) func() {
	u, _ := url.Parse(baseURL)
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.sources == nil {
		tt.sources = map[string]oauth2.TokenSource{}
	}
	tt.sources[u.Host] = ts
	return func() {
		tt.mu.Lock()
		delete(tt.sources, u.Host)
		tt.mu.Unlock()
	}
}

// dbArgs is the --db flag the server was started with, for the CLI.
func (s *testServer) dbArgs() []string {
	if s.DB == "" {
		return nil
	}
	return []string{"--db", s.DB}
}

// cli runs a smartfhir command against the server's database.
func (s *testServer) cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(append(args, "--data-dir", s.DataDir, "--base-url", s.BaseURL), s.dbArgs()...)
	if err := run(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("smartfhir %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// backendClient registers an approved confidential client allowed scopes
// and returns its client_credentials configuration.
func (s *testServer) backendClient(t *testing.T, scopes string) *clientcredentials.Config {
	t.Helper()
	var c map[string]string
	out := s.cli(t, "clients", "add", "--name", "test "+scopes, "--type", "confidential-symmetric", "--scopes", scopes, "--approve", "--json")
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("clients add: %v: %s", err, out)
	}
	return &clientcredentials.Config{ClientID: c["client_id"], ClientSecret: c["client_secret"],
		TokenURL: s.BaseURL + "/oauth/token", Scopes: strings.Fields(scopes), AuthStyle: oauth2.AuthStyleInHeader}
}

// systemToken returns a client_credentials access token for scopes.
func (s *testServer) systemToken(t *testing.T, scopes string) string {
	t.Helper()
	tok, err := s.backendClient(t, scopes).Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials token for %q: %v", scopes, err)
	}
	return tok.AccessToken
}
