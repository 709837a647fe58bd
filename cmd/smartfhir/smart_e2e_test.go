package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authEnv is the real server (startServer) on a fresh database,
// administered through the CLI commands against the same database while it
// runs, as scripts do.
type authEnv struct {
	t       *testing.T
	base    string
	dataDir string
	dbArgs  []string
}

func startAuth(t *testing.T, dbArgs ...string) *authEnv {
	t.Helper()
	s := startServer(t, dbArgs...)
	return &authEnv{t: t, base: s.BaseURL, dataDir: s.DataDir, dbArgs: dbArgs}
}

// cli runs a smartfhir command against the environment's database.
func (e *authEnv) cli(args ...string) string {
	e.t.Helper()
	var out, errb bytes.Buffer
	args = append(append(args, "--data-dir", e.dataDir, "--base-url", e.base), e.dbArgs...)
	if err := run(context.Background(), args, &out, &errb); err != nil {
		e.t.Fatalf("smartfhir %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func (e *authEnv) cliJSON(args ...string) map[string]string {
	e.t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(e.cli(append(args, "--json")...)), &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

const e2eRedirect = "http://127.0.0.1:9999/cb"

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// browse follows an authorization URL through the login and consent pages
// with plain form posts and returns the final redirect to the app.
func (e *authEnv) browse(authURL, username, password string, ticked []string, patient string) *url.URL {
	e.t.Helper()
	return e.browseWith(authURL, username, password, func(body string) url.Values {
		if ticked == nil {
			ticked = tickedScopes(body)
		}
		v := url.Values{"scope": ticked}
		if patient != "" {
			v.Set("patient", patient)
		}
		return v
	})
}

// tickedScopes are the values of a consent page's ticked scope boxes.
func tickedScopes(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`name="scope" value="([^"]*)" checked`).FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// browseWith is browse with the consent form's fields (besides the CSRF
// token and decision=allow) made by answer from the consent page.
func (e *authEnv) browseWith(authURL, username, password string, answer func(consentPage string) url.Values) *url.URL {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	get := func(resp *http.Response, err error) (*http.Response, string) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get(c.Get(authURL))
	if resp.Request.URL.Path != "/login" {
		e.t.Fatalf("authorize led to %s (%d): %s", resp.Request.URL, resp.StatusCode, body)
	}
	form := func(body string, v url.Values) string {
		m := csrfField.FindStringSubmatch(body)
		if m == nil {
			e.t.Fatalf("no CSRF token in %s", body)
		}
		v.Set("csrf_token", html.UnescapeString(m[1]))
		return v.Encode()
	}
	resp, body = get(c.Post(e.base+"/login", "application/x-www-form-urlencoded", strings.NewReader(form(body, url.Values{"username": {username}, "password": {password}}))))
	if resp.Request.URL.Path != "/consent" {
		e.t.Fatalf("login led to %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	v := answer(body)
	v.Set("decision", "allow")
	resp, _ = get(c.Post(e.base+"/consent", "application/x-www-form-urlencoded", strings.NewReader(form(body, v))))
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("consent answered %d, want 302", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *authEnv) oauthConfig(id, secret string, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: e2eRedirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: e.base + "/oauth/authorize", TokenURL: e.base + "/oauth/token", AuthStyle: style}}
}

func (e *authEnv) introspect(id, secret, token string) map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *authEnv) verifyIDToken(raw string) map[string]any {
	e.t.Helper()
	resp, err := http.Get(e.base + "/oauth/jwks")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		e.t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		e.t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		e.t.Fatalf("no published key %q", tok.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		e.t.Fatalf("id_token signature: %v", err)
	}
	return claims
}

func TestSMARTEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbArgs []string) { testSMARTEndToEnd(t, startAuth(t, dbArgs...)) })
}

func testSMARTEndToEnd(t *testing.T, e *authEnv) {
	ctx := context.Background()
	fhirBase := e.base + "/fhir"
	e.cli("users", "add", "--username", "pat", "--password", "correct horse", "--role", "patient", "--fhir-user", "Patient/85")
	e.cli("users", "add", "--username", "doc", "--password", "correct horse", "--role", "practitioner", "--fhir-user", "Practitioner/7", "--patients", "85,355")
	if out := e.cli("users", "list"); !strings.Contains(out, "doc") || !strings.Contains(out, "85,355") {
		t.Errorf("users list = %q", out)
	}

	t.Run("standalone launch, confidential client, x/oauth2", func(t *testing.T) {
		c := e.cliJSON("clients", "add", "--name", "Conf", "--type", "confidential-symmetric", "--redirect-uri", e2eRedirect,
			"--scopes", "openid fhirUser launch/patient offline_access patient/*.cruds", "--approve")
		id, secret := c["client_id"], c["client_secret"]
		if id == "" || secret == "" {
			t.Fatalf("clients add --json = %v", c)
		}
		cfg := e.oauthConfig(id, secret, oauth2.AuthStyleInHeader, "openid", "fhirUser", "launch/patient", "offline_access", "patient/Observation.rs", "patient/Patient.read")
		verifier := oauth2.GenerateVerifier()
		redirect := e.browse(cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase),
			oauth2.SetAuthURLParam("nonce", "nn")), "pat", "correct horse", nil, "")
		if redirect.Query().Get("state") != "st-1" {
			t.Fatalf("redirect = %s", redirect)
		}
		tok, err := cfg.Exchange(ctx, redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if tok.Extra("patient") != "85" || tok.Extra("scope") != "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Patient.read" || tok.RefreshToken == "" {
			t.Errorf("token = %+v patient %v scope %v", tok, tok.Extra("patient"), tok.Extra("scope"))
		}
		claims := e.verifyIDToken(tok.Extra("id_token").(string))
		if claims["fhirUser"] != fhirBase+"/Patient/85" || claims["aud"] != id || claims["nonce"] != "nn" || claims["iss"] != e.base {
			t.Errorf("id_token claims = %v", claims)
		}
		in := e.introspect(id, secret, tok.AccessToken)
		if in["active"] != true || in["scope"] != tok.Extra("scope") || in["patient"] != "85" {
			t.Errorf("introspect = %v", in)
		}
		// Refresh through x/oauth2: an expired token makes it refresh.
		old := *tok
		old.Expiry = time.Now().Add(-time.Minute)
		fresh, err := cfg.TokenSource(ctx, &old).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
			t.Errorf("refresh did not rotate")
		}
		// The first refresh token again: reuse revokes the grant.
		if _, err := cfg.TokenSource(ctx, &old).Token(); err == nil {
			t.Errorf("reused refresh token accepted")
		}
		if in := e.introspect(id, secret, fresh.AccessToken); in["active"] != false {
			t.Errorf("access token after refresh-token reuse = %v, want inactive", in)
		}
		// Disabling the client by the CLI stops the rest at once.
		tok2, err := cfg.Exchange(ctx, e.browse(cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase)),
			"pat", "correct horse", nil, "").Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		e.cli("clients", "disable", id)
		if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
			t.Errorf("disabled client refreshed")
		}
		if out := e.cli("clients", "show", id); !strings.Contains(out, `"status": "disabled"`) {
			t.Errorf("clients show = %s", out)
		}
	})

	t.Run("public client, v1 scopes, limited consent", func(t *testing.T) {
		id := e.cliJSON("clients", "add", "--name", "Pub", "--type", "public", "--redirect-uri", e2eRedirect, "--scopes", "launch/patient patient/*.read openid", "--approve")["client_id"]
		cfg := e.oauthConfig(id, "", oauth2.AuthStyleInParams, "launch/patient", "patient/Observation.read", "patient/Condition.read")
		verifier := oauth2.GenerateVerifier()
		redirect := e.browse(cfg.AuthCodeURL("p", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase)),
			"doc", "correct horse", []string{"launch/patient", "patient/Observation.read"}, "355")
		tok, err := cfg.Exchange(ctx, redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("scope") != "launch/patient patient/Observation.read" || tok.Extra("patient") != "355" || tok.RefreshToken != "" {
			t.Errorf("scope %v patient %v refresh %q", tok.Extra("scope"), tok.Extra("patient"), tok.RefreshToken)
		}
	})

	t.Run("EHR launch from the CLI with encounter", func(t *testing.T) {
		c := e.cliJSON("clients", "add", "--name", "EHR app", "--type", "confidential-symmetric", "--redirect-uri", e2eRedirect,
			"--scopes", "launch openid fhirUser user/*.rs patient/*.rs", "--launch-url", "https://app.example/launch", "--approve")
		l := e.cliJSON("launch", "--client", c["client_id"], "--user", "doc", "--patient", "355", "--encounter", "E9")
		lu, _ := url.Parse(l["launch_url"])
		if lu.Query().Get("iss") != fhirBase || lu.Query().Get("launch") != l["launch"] {
			t.Fatalf("launch = %v", l)
		}
		cfg := e.oauthConfig(c["client_id"], c["client_secret"], oauth2.AuthStyleInParams, "launch", "openid", "fhirUser", "patient/Observation.rs")
		verifier := oauth2.GenerateVerifier()
		redirect := e.browse(cfg.AuthCodeURL("e", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase),
			oauth2.SetAuthURLParam("launch", l["launch"])), "doc", "correct horse", nil, "")
		tok, err := cfg.Exchange(ctx, redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Extra("patient") != "355" || tok.Extra("encounter") != "E9" || tok.Extra("need_patient_banner") != false {
			t.Errorf("EHR launch token: patient %v encounter %v banner %v", tok.Extra("patient"), tok.Extra("encounter"), tok.Extra("need_patient_banner"))
		}
		claims := e.verifyIDToken(tok.Extra("id_token").(string))
		if claims["fhirUser"] != fhirBase+"/Practitioner/7" {
			t.Errorf("fhirUser = %v", claims["fhirUser"])
		}
	})

	t.Run("standalone launch with the encounter picker", func(t *testing.T) {
		testStandaloneEncounter(t, e)
	})

	t.Run("backend services with RS384 and ES384 from a JWKS URL", func(t *testing.T) {
		rk, _ := rsa.GenerateKey(rand.Reader, 2048)
		ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
				{Key: &rk.PublicKey, KeyID: "r", Algorithm: "RS384"}, {Key: &ek.PublicKey, KeyID: "e", Algorithm: "ES384"}}})
		}))
		defer jwks.Close()
		id := e.cliJSON("clients", "add", "--name", "Bulk", "--type", "confidential-asymmetric", "--jwks-url", jwks.URL, "--scopes", "system/*.rs", "--approve")["client_id"]
		for _, k := range []struct {
			alg jose.SignatureAlgorithm
			kid string
			key any
		}{{jose.RS384, "r", rk}, {jose.ES384, "e", ek}} {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			assertion, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{e.base + "/oauth/token"},
				Expiry: jwt.NewNumericDate(time.Now().Add(4 * time.Minute)), ID: "jti-" + k.kid}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			cc := clientcredentials.Config{ClientID: id, TokenURL: e.base + "/oauth/token", Scopes: []string{"system/Observation.rs"}, AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatalf("%s: %v", k.alg, err)
			}
			if tok.Extra("scope") != "system/Observation.rs" || time.Until(tok.Expiry) > 301*time.Second {
				t.Errorf("%s: scope %v expiry %v", k.alg, tok.Extra("scope"), tok.Expiry)
			}
			// The same assertion twice is a replay.
			if _, err := cc.Token(ctx); err == nil {
				t.Errorf("%s: replayed assertion accepted", k.alg)
			}
		}
	})

	t.Run("key rotation keeps old id_tokens verifiable", func(t *testing.T) {
		before := e.jwksKids()
		if out := e.cli("keys", "rotate"); !strings.Contains(out, "new signing key") {
			t.Errorf("keys rotate = %q", out)
		}
		// The server rereads keys within a minute; the database already has
		// both, so a fresh server on it publishes both at once.
		f := dbFlags{DataDir: e.dataDir}
		if len(e.dbArgs) == 2 { // --db URL
			f.DB = e.dbArgs[1]
		}
		db, err := f.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		srv, err := newAuthServer(db, e.base, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		set, err := srv.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != len(before)+1 || set.Keys[1].KeyID != before[0] {
			t.Errorf("keys after rotation = %d, before %v", len(set.Keys), before)
		}
	})
}

func (e *authEnv) jwksKids() []string {
	resp, err := http.Get(e.base + "/oauth/jwks")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	_ = json.NewDecoder(resp.Body).Decode(&set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	jwksFile := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(jwksFile, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"clients without subcommand":   {"clients"},
		"unknown clients subcommand":   {"clients", "frob"},
		"bad client type":              {"clients", "add", "--name", "x", "--type", "secret"},
		"public client without a URI":  {"clients", "add", "--name", "x", "--type", "public"},
		"redirect URI with a fragment": {"clients", "add", "--name", "x", "--type", "public", "--redirect-uri", "https://a.example/cb#x"},
		"plain http redirect":          {"clients", "add", "--name", "x", "--type", "public", "--redirect-uri", "http://a.example/cb"},
		"bad scope":                    {"clients", "add", "--name", "x", "--type", "public", "--redirect-uri", "https://a.example/cb", "--scopes", "patient/X.zz"},
		"asymmetric without keys":      {"clients", "add", "--name", "x", "--type", "confidential-asymmetric"},
		"bad JWKS file":                {"clients", "add", "--name", "x", "--type", "confidential-asymmetric", "--jwks-file", jwksFile},
		"approve unknown client":       {"clients", "approve", "nope"},
		"short password":               {"users", "add", "--username", "u", "--password", "short", "--role", "admin"},
		"bad role":                     {"users", "add", "--username", "u", "--password", "long enough", "--role", "king"},
		"patient without fhir-user":    {"users", "add", "--username", "u", "--password", "long enough", "--role", "patient"},
		"launch without patient":       {"launch", "--client", "c", "--user", "u"},
		"keys without rotate":          {"keys"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if err := run(context.Background(), append(args, "--data-dir", dir), &out, &errb); err == nil {
				t.Errorf("smartfhir %v succeeded: %s", args, out.String())
			}
		})
	}
	t.Run("duplicate user", func(t *testing.T) {
		args := []string{"users", "add", "--username", "dup", "--password", "long enough", "--role", "admin", "--data-dir", dir}
		if err := run(context.Background(), args, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("second add: %v", err)
		}
	})
}

// testStandaloneEncounter stores a Patient and two Encounters over the FHIR
// API, then runs a standalone launch asking for launch/encounter and picks
// the older Encounter on the consent page (SMART App Launch 2.2
// context-standalone-encounter).
func testStandaloneEncounter(t *testing.T, e *authEnv) {
	ctx := context.Background()
	fhirBase := e.base + "/fhir"
	create := func(body string) string {
		t.Helper()
		status, out := e2eCall(t, "POST", fhirBase+"/"+regexp.MustCompile(`"resourceType":"(\w+)"`).FindStringSubmatch(body)[1], []byte(body))
		var r struct{ ID string }
		if err := json.Unmarshal(out, &r); status != http.StatusCreated || err != nil || r.ID == "" {
			t.Fatalf("create = %d %s", status, out)
		}
		return r.ID
	}
	pid := create(`{"resourceType":"Patient","name":[{"family":"Encounterson","given":["Eve"]}],"gender":"female","birthDate":"1980-02-03"}`)
	encounter := func(class, display, typ, start, end string) string {
		return create(`{"resourceType":"Encounter","status":"finished",` +
			`"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"` + class + `","display":"` + display + `"},` +
			`"type":[{"text":"` + typ + `"}],"subject":{"reference":"Patient/` + pid + `"},` +
			`"period":{"start":"` + start + `","end":"` + end + `"}}`)
	}
	older := encounter("IMP", "inpatient encounter", "Hospital admission", "2023-11-20T08:00:00Z", "2023-11-23T12:00:00Z")
	newer := encounter("AMB", "ambulatory", "Office visit", "2024-03-04T09:00:00Z", "2024-03-04T09:30:00Z")
	// Another patient's encounter must not be offered.
	other := create(`{"resourceType":"Patient","name":[{"family":"Other"}]}`)
	create(`{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},` +
		`"subject":{"reference":"Patient/` + other + `"},"period":{"start":"2024-05-01"}}`)

	resp, err := http.Get(fhirBase + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Capabilities []string }
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || !slices.Contains(doc.Capabilities, "context-standalone-encounter") {
		t.Errorf("capabilities = %v (%v), want context-standalone-encounter", doc.Capabilities, err)
	}

	e.cli("users", "add", "--username", "eve", "--password", "correct horse", "--role", "patient", "--fhir-user", "Patient/"+pid)
	c := e.cliJSON("clients", "add", "--name", "Visit app", "--type", "confidential-symmetric", "--redirect-uri", e2eRedirect,
		"--scopes", "launch/patient launch/encounter patient/*.rs", "--approve")
	cfg := e.oauthConfig(c["client_id"], c["client_secret"], oauth2.AuthStyleInHeader, "launch/patient", "launch/encounter", "patient/Encounter.rs")
	verifier := oauth2.GenerateVerifier()
	radios := regexp.MustCompile(`type="radio" name="encounter" value="([^"]*)"`)
	redirect := e.browseWith(cfg.AuthCodeURL("enc", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase)),
		"eve", "correct horse", func(body string) url.Values {
			var offered []string
			for _, m := range radios.FindAllStringSubmatch(body, -1) {
				offered = append(offered, m[1])
			}
			if !slices.Equal(offered, []string{newer, older}) {
				t.Errorf("encounters offered = %v, want the patient's two, latest first: %v", offered, []string{newer, older})
			}
			for _, label := range []string{"2024-03-04 · Office visit · ambulatory (finished)", "2023-11-20 to 2023-11-23 · Hospital admission · inpatient encounter (finished)"} {
				if !strings.Contains(body, label) {
					t.Errorf("consent page lacks the label %q", label)
				}
			}
			return url.Values{"scope": tickedScopes(body), "encounter": {older}}
		})
	tok, err := cfg.Exchange(ctx, redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v (redirect %s)", err, redirect)
	}
	if tok.Extra("patient") != pid || tok.Extra("encounter") != older || tok.Extra("scope") != "launch/patient launch/encounter patient/Encounter.rs" {
		t.Errorf("token: patient %v encounter %v scope %v, want %s, %s", tok.Extra("patient"), tok.Extra("encounter"), tok.Extra("scope"), pid, older)
	}
	fc, _ := json.Marshal(tok.Extra("fhirContext"))
	if want := `[{"reference":"Encounter/` + older + `"}]`; string(fc) != want {
		t.Errorf("fhirContext = %s, want %s", fc, want)
	}
	if in := e.introspect(c["client_id"], c["client_secret"], tok.AccessToken); in["active"] != true || in["encounter"] != older || in["patient"] != pid {
		t.Errorf("introspect = %v", in)
	}
}
