package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/smart"
)

// benchAuth is the authorization server on a real SQLite database, called
// through its HTTP handlers without a network: the figures include the
// database, unlike those of internal/smart.
func benchAuth(b *testing.B) (http.Handler, smart.Store, string, string) {
	b.Helper()
	f := dbFlags{DataDir: b.TempDir()}
	db, err := f.open(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	mux := http.NewServeMux()
	srv, err := mountAuth(mux, db, nil, "http://localhost:8080", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	id, secret, err := srv.RegisterClient(context.Background(), smart.ClientSpec{Name: "b", Type: smart.ConfidentialSymmetric,
		RedirectURIs: []string{e2eRedirect}, Scopes: "launch/patient offline_access patient/*.rs", Approve: true})
	if err != nil {
		b.Fatal(err)
	}
	return mux, db.Auth(), id, secret
}

func benchToken(b *testing.B, h http.Handler, form url.Values, id, secret string) map[string]any {
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		b.Fatal(err)
	}
	return out
}

func randToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sum(v string) []byte {
	s := sha256.Sum256([]byte(v))
	return s[:]
}

func BenchmarkSQLiteAuthorizationCodeExchange(b *testing.B) {
	h, st, id, secret := benchAuth(b)
	ctx := context.Background()
	verifier := strings.Repeat("v", 64)
	challenge := base64.RawURLEncoding.EncodeToString(sum(verifier))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		now := time.Now()
		g := &smart.Grant{ID: randToken(), ClientID: id, Username: "u", Scopes: "launch/patient offline_access patient/*.rs", Patient: "1", Created: now}
		code := randToken()
		if err := st.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
		if err := st.CreateCode(ctx, &smart.Code{Hash: sum(code), GrantID: g.ID, ClientID: id, RedirectURI: e2eRedirect, CodeChallenge: challenge, Created: now, Expires: now.Add(time.Minute)}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		benchToken(b, h, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {e2eRedirect}, "code_verifier": {verifier}}, id, secret)
	}
}

func BenchmarkSQLiteRefresh(b *testing.B) {
	h, st, id, secret := benchAuth(b)
	ctx := context.Background()
	now := time.Now()
	g := &smart.Grant{ID: "g", ClientID: id, Username: "u", Scopes: "launch/patient offline_access patient/*.rs", Patient: "1", Created: now}
	if err := st.CreateGrant(ctx, g); err != nil {
		b.Fatal(err)
	}
	rt := randToken()
	if err := st.CreateToken(ctx, &smart.Token{Hash: sum(rt), Kind: smart.RefreshToken, GrantID: "g", ClientID: id, Scopes: g.Scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rt = benchToken(b, h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, secret)["refresh_token"].(string)
	}
}
