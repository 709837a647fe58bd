package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/access"
	"smartfhir/internal/search"
	"smartfhir/internal/smart"
	"smartfhir/internal/store"
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

// benchFHIRAuth is the FHIR API's bearer check (fhirAuth) on SQLite with
// the panel finder: a patient's launch token, and a user/ token of a
// practitioner who has 50 patients on their list, 100 whose
// generalPractitioner they are and 100 in active CareTeams with them. It
// returns one server with the default bearer cache and one whose cache
// never hits.
func benchFHIRAuth(b *testing.B) (cached, uncached *smart.Server, tokens map[string]string) {
	b.Helper()
	ctx := context.Background()
	base := "http://localhost:8080"
	reg, err := search.NewRegistry(search.Config{Base: base + "/fhir"})
	if err != nil {
		b.Fatal(err)
	}
	f := dbFlags{DataDir: b.TempDir(), search: reg}
	db, err := f.open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	err = db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range 100 {
			for _, v := range []*store.Version{
				{Type: "Patient", ID: fmt.Sprintf("gp%d", i), Body: []byte(fmt.Sprintf(`{"resourceType":"Patient","id":"gp%d","generalPractitioner":[{"reference":"Practitioner/7"}]}`, i))},
				{Type: "CareTeam", ID: fmt.Sprintf("ct%d", i), Body: []byte(fmt.Sprintf(`{"resourceType":"CareTeam","id":"ct%d","status":"active","subject":{"reference":"Patient/ct%d"},"participant":[{"member":{"reference":"Practitioner/7"},"period":{"start":"2020-01-01"}}]}`, i, i))},
			} {
				v.VersionID, v.Method = 1, "PUT"
				if err := tx.Put(ctx, v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	servers := make([]*smart.Server, 2)
	for i, ttl := range []time.Duration{0, time.Nanosecond} {
		cfg := authConfig(db, base, logger)
		cfg.Panels = &panelFinder{store: db, registry: reg, base: cfg.FHIRBase, now: time.Now}
		cfg.BearerCacheTTL = ttl // 0: the default
		if servers[i], err = smart.New(cfg); err != nil {
			b.Fatal(err)
		}
	}
	id, _, err := servers[0].RegisterClient(ctx, smart.ClientSpec{Name: "b", Type: smart.Public, RedirectURIs: []string{e2eRedirect},
		Scopes: "launch/patient patient/*.rs user/*.rs", Approve: true})
	if err != nil {
		b.Fatal(err)
	}
	st := db.Auth()
	list := make([]string, 50)
	for i := range list {
		list[i] = fmt.Sprintf("l%d", i)
	}
	now := time.Now()
	tokens = map[string]string{}
	for _, u := range []struct {
		name  string
		user  smart.User
		grant smart.Grant
	}{
		{"patient", smart.User{Username: "pat", Role: smart.RolePatient, FHIRUser: "Patient/1"},
			smart.Grant{Patient: "1", Scopes: "launch/patient patient/*.rs"}},
		{"practitioner", smart.User{Username: "doc", Role: smart.RolePractitioner, FHIRUser: "Practitioner/7", Patients: list},
			smart.Grant{Scopes: "user/*.rs"}},
	} {
		u.user.PasswordHash, u.user.Created = "unused", now
		if err := st.CreateUser(ctx, &u.user); err != nil {
			b.Fatal(err)
		}
		g := u.grant
		g.ID, g.ClientID, g.Username, g.FHIRUser, g.Created = u.name, id, u.user.Username, u.user.FHIRUser, now
		if err := st.CreateGrant(ctx, &g); err != nil {
			b.Fatal(err)
		}
		tokens[u.name] = randToken()
		if err := st.CreateToken(ctx, &smart.Token{Hash: sum(tokens[u.name]), Kind: smart.AccessToken, GrantID: g.ID, ClientID: id,
			Scopes: g.Scopes, Issued: now, Expires: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	info, err := servers[0].Authenticate(ctx, tokens["practitioner"])
	if err != nil || len(info.UserPatients) != 250 {
		b.Fatalf("practitioner reaches %d patients, %v; want 250", len(info.UserPatients), err)
	}
	return servers[0], servers[1], tokens
}

// BenchmarkFHIRAuth is what authenticating a FHIR API request costs:
// "cached" is the request path for a token in the bearer cache, which
// returns the policy compiled on the cache miss; "compile-per-request" adds
// what compiling the policy on every request (as before) costs; "miss" is
// a cache miss on SQLite (token, grant, client and user reads, the opt-out
// check, and for the practitioner the panel's two searches).
func BenchmarkFHIRAuth(b *testing.B) {
	cached, uncached, tokens := benchFHIRAuth(b)
	ctx := context.Background()
	for _, who := range []string{"patient", "practitioner"} {
		tok := tokens[who]
		b.Run("cached/"+who, func(b *testing.B) {
			auth := fhirAuth{cached}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := auth.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("compile-per-request/"+who, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				info, err := cached.Authenticate(ctx, tok)
				if err != nil {
					b.Fatal(err)
				}
				_ = access.NewPolicy(access.Grant{Scopes: info.Scopes, Patient: info.Patient, UserPatients: slices.Clone(info.UserPatients),
					Who: access.Principal{ClientID: info.ClientID, Username: info.Username, FHIRUser: info.FHIRUser, Admin: info.Role == smart.RoleAdmin}})
			}
		})
		b.Run("miss/"+who, func(b *testing.B) {
			auth := fhirAuth{uncached}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := auth.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
