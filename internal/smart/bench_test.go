package smart

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// benchServer is a Server on the memory store, called through its HTTP
// handlers without a network: the figures are the server's own cost,
// without the database's.
func benchServer(b *testing.B) (*Server, http.Handler, string, string) {
	b.Helper()
	st := newMemStore()
	srv, err := New(Config{Issuer: "http://localhost:8080", Store: st})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux)
	id, secret, err := srv.RegisterClient(context.Background(), ClientSpec{Name: "b", Type: ConfidentialSymmetric, RedirectURIs: []string{redirect},
		Scopes: "launch/patient offline_access patient/*.rs", Approve: true})
	if err != nil {
		b.Fatal(err)
	}
	return srv, mux, id, secret
}

func post(b *testing.B, h http.Handler, form url.Values, id, secret string) map[string]any {
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

func BenchmarkAuthorizationCodeExchange(b *testing.B) {
	srv, h, id, secret := benchServer(b)
	ctx := context.Background()
	verifier, challenge := pkce("v")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		g := &Grant{ID: mustSecret(b, srv), ClientID: id, Username: "u", Scopes: "launch/patient offline_access patient/*.rs", Patient: "1", Created: now}
		code := mustSecret(b, srv)
		if err := srv.store.CreateGrant(ctx, g); err != nil {
			b.Fatal(err)
		}
		if err := srv.store.CreateCode(ctx, &Code{Hash: hash(code), GrantID: g.ID, ClientID: id, RedirectURI: redirect, CodeChallenge: challenge, Created: now, Expires: now.Add(time.Minute)}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		post(b, h, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, id, secret)
	}
}

func BenchmarkRefresh(b *testing.B) {
	srv, h, id, secret := benchServer(b)
	ctx := context.Background()
	now := time.Now()
	g := &Grant{ID: "g", ClientID: id, Username: "u", Scopes: "launch/patient offline_access patient/*.rs", Patient: "1", Created: now}
	if err := srv.store.CreateGrant(ctx, g); err != nil {
		b.Fatal(err)
	}
	rt := mustSecret(b, srv)
	if err := srv.store.CreateToken(ctx, &Token{Hash: hash(rt), Kind: RefreshToken, GrantID: "g", ClientID: id, Scopes: g.Scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out := post(b, h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, secret)
		rt = out["refresh_token"].(string)
	}
}

func BenchmarkBearerCheckCached(b *testing.B) {
	srv, _, id, _ := benchServer(b)
	ctx := context.Background()
	now := time.Now()
	g := &Grant{ID: "g", ClientID: id, Username: "u", Scopes: "patient/*.rs", Created: now}
	_ = srv.store.CreateGrant(ctx, g)
	_ = srv.store.CreateUser(ctx, &User{Username: "u", Role: RolePatient, FHIRUser: "Patient/1"})
	at := mustSecret(b, srv)
	_ = srv.store.CreateToken(ctx, &Token{Hash: hash(at), Kind: AccessToken, GrantID: "g", ClientID: id, Scopes: g.Scopes, Issued: now, Expires: now.Add(time.Hour)})
	if _, err := srv.Authenticate(ctx, at); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := srv.Authenticate(ctx, at); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func mustSecret(b *testing.B, s *Server) string {
	v, err := s.newSecret()
	if err != nil {
		b.Fatal(err)
	}
	return v
}
