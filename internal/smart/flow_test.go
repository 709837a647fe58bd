package smart

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestDiscovery(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.base + "/fhir/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("CORS header = %q, want *", got)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != h.base || doc["token_endpoint"] != h.base+"/oauth/token" {
		t.Errorf("issuer/token_endpoint = %v/%v", doc["issuer"], doc["token_endpoint"])
	}
	if got := doc["code_challenge_methods_supported"].([]any); len(got) != 1 || got[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want only S256", got)
	}
	caps := doc["capabilities"].([]any)
	for _, want := range []string{"launch-ehr", "launch-standalone", "client-confidential-asymmetric", "permission-v2", "sso-openid-connect"} {
		if !slices.Contains(caps, any(want)) {
			t.Errorf("capabilities lack %s", want)
		}
	}
	resp2, err := http.Get(h.base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var oidc map[string]any
	if err := json.NewDecoder(resp2.Body).Decode(&oidc); err != nil {
		t.Fatal(err)
	}
	if oidc["issuer"] != h.base || !slices.Contains(oidc["id_token_signing_alg_values_supported"].([]any), any("RS256")) {
		t.Errorf("openid-configuration = %v", oidc)
	}
	var sec map[string]any
	if err := json.Unmarshal(h.srv.CapabilitySecurity(), &sec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(h.srv.CapabilitySecurity()), `"valueUri":"`+h.base+`/oauth/token"`) ||
		!strings.Contains(string(h.srv.CapabilitySecurity()), `"code":"SMART-on-FHIR"`) {
		t.Errorf("CapabilitySecurity = %s", h.srv.CapabilitySecurity())
	}
}

// verifyIDToken checks an id_token against the published JWKS.
func verifyIDToken(t *testing.T, h *harness, raw string) map[string]any {
	t.Helper()
	resp, err := http.Get(h.base + "/oauth/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys with kid %q", len(keys), tok.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("id_token signature: %v", err)
	}
	return claims
}

func TestStandaloneLaunchConfidentialClient(t *testing.T) {
	h := newHarness(t)
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "openid fhirUser launch/patient offline_access patient/*.cruds"})
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/85"})
	verifier, challenge := pkce("a")
	code := h.code(authz{clientID: id, scope: "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Condition.read", state: "s1", nonce: "n-1", challenge: challenge}, "pat")

	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	status, tok, hdr := h.tokenReq(form, id, secret)
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Pragma") != "no-cache" {
		t.Errorf("token response cache headers = %q / %q", hdr.Get("Cache-Control"), hdr.Get("Pragma"))
	}
	if tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3600) || tok["patient"] != "85" || tok["need_patient_banner"] != true {
		t.Errorf("token response = %v", tok)
	}
	if got, want := tok["scope"], "openid fhirUser launch/patient offline_access patient/Observation.rs patient/Condition.read"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
	claims := verifyIDToken(t, h, tok["id_token"].(string))
	if claims["iss"] != h.base || claims["sub"] != "pat" || claims["aud"] != id || claims["nonce"] != "n-1" || claims["fhirUser"] != h.base+"/fhir/Patient/85" {
		t.Errorf("id_token claims = %v", claims)
	}

	info, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string))
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if info.Patient != "85" || info.Username != "pat" || info.ClientID != id || info.Scopes.String() != tok["scope"] {
		t.Errorf("AccessInfo = %+v", info)
	}

	t.Run("introspection answers the granted set", func(t *testing.T) {
		status, in, _ := h.postJSON("/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}}, id, secret)
		if status != 200 || in["active"] != true || in["scope"] != tok["scope"] || in["patient"] != "85" || in["client_id"] != id ||
			in["fhirUser"] != h.base+"/fhir/Patient/85" || in["sub"] != "pat" || in["token_type"] != "Bearer" {
			t.Errorf("introspect = %d %v", status, in)
		}
		_, in, _ = h.postJSON("/oauth/introspect", url.Values{"token": {"nonsense"}}, id, secret)
		if len(in) != 1 || in["active"] != false {
			t.Errorf("introspect of a random token = %v, want only active false", in)
		}
	})

	t.Run("refresh rotates and may narrow", func(t *testing.T) {
		rt := tok["refresh_token"].(string)
		// Narrowing without offline_access narrows this access token only:
		// the new refresh token keeps the grant's scope (RFC 6749 §6).
		status, r1, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"patient/Observation.r openid"}}, id, secret)
		if status != 200 || r1["scope"] != "patient/Observation.r openid" || r1["refresh_token"] == rt || r1["refresh_token"] == nil {
			t.Fatalf("narrowing refresh = %d %v", status, r1)
		}
		status, r2, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1["refresh_token"].(string)}}, id, secret)
		if status != 200 || r2["scope"] != tok["scope"] || r2["refresh_token"] == nil {
			t.Fatalf("refresh after a narrowing one = %d %v, want the original scope %q and a refresh token", status, r2, tok["scope"])
		}
		status, r3w, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2["refresh_token"].(string)}, "scope": {"patient/Observation.rs patient/Patient.rs"}}, id, secret)
		if status != 400 || r3w["error"] != "invalid_scope" {
			t.Errorf("widening refresh = %d %v, want invalid_scope", status, r3w)
		}
		status, r3, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, id, secret)
		if status != 400 || r3["error"] != "invalid_grant" {
			t.Errorf("reused refresh token = %d %v, want invalid_grant", status, r3)
		}
		if _, err := h.srv.Authenticate(context.Background(), r1["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("access token of a grant whose refresh token was replayed: err = %v, want ErrInvalidToken", err)
		}
	})
}

func TestRefreshWithoutScopeAndRevocation(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("openid launch/patient online_access patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	verifier, challenge := pkce("b")
	code := h.code(authz{clientID: id, scope: "launch/patient online_access patient/*.read", state: "x", challenge: challenge}, "pat")
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "client_id": {id}}, "", "")
	if status != 200 || tok["scope"] != "launch/patient online_access patient/*.read" {
		t.Fatalf("public client exchange = %d %v", status, tok)
	}
	status, r1, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {id}}, "", "")
	if status != 200 || r1["scope"] != tok["scope"] {
		t.Fatalf("refresh without scope = %d %v", status, r1)
	}
	status, r2, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"random-token"}, "client_id": {id}}, "", "")
	if status != 400 || r2["error"] != "invalid_grant" {
		t.Errorf("random refresh token = %d %v", status, r2)
	}
	// Revoking the refresh token ends the grant: its access token too.
	status, _, _ = h.postJSON("/oauth/revoke", url.Values{"token": {r1["refresh_token"].(string)}, "client_id": {id}}, "", "")
	if status != 200 {
		t.Fatalf("revoke = %d", status)
	}
	status, r3, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r1["refresh_token"].(string)}, "client_id": {id}}, "", "")
	if status != 400 || r3["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token = %d %v", status, r3)
	}
	h.clock.Advance(10 * time.Second) // past the bearer cache
	if _, err := h.srv.Authenticate(context.Background(), r1["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("access token after revoking its grant: %v", err)
	}
}

func (h *harness) clientPublic(scopes string) string {
	id, _ := h.client(ClientSpec{Type: Public, Scopes: scopes})
	return id
}

func TestAccessTokenRevocationIsImmediateLocally(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("openid patient/*.rs launch/patient")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	verifier, challenge := pkce("c")
	code := h.code(authz{clientID: id, scope: "patient/*.rs launch/patient", challenge: challenge}, "pat")
	_, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "client_id": {id}}, "", "")
	at := tok["access_token"].(string)
	if _, err := h.srv.Authenticate(context.Background(), at); err != nil {
		t.Fatal(err)
	}
	if tok["refresh_token"] != nil {
		t.Errorf("refresh token issued without offline_access or online_access")
	}
	h.postJSON("/oauth/revoke", url.Values{"token": {at}, "client_id": {id}}, "", "")
	if _, err := h.srv.Authenticate(context.Background(), at); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("revoked access token: %v", err)
	}
}

func TestEHRLaunch(t *testing.T) {
	h := newHarness(t)
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "launch openid fhirUser user/*.rs patient/*.rs", LaunchURL: "https://app.example/launch"})
	h.user(UserSpec{Username: "doc", Role: RolePractitioner, FHIRUser: "Practitioner/7", Patients: []string{"85", "355"}})
	h.user(UserSpec{Username: "other", Role: RolePractitioner, FHIRUser: "Practitioner/8"})
	launchURL, launch, err := h.srv.NewLaunch(context.Background(), id, "doc", "355", "E1")
	if err != nil {
		t.Fatal(err)
	}
	lu, _ := url.Parse(launchURL)
	if lu.Host != "app.example" || lu.Query().Get("iss") != h.base+"/fhir" || lu.Query().Get("launch") != launch {
		t.Errorf("launch URL = %s", launchURL)
	}
	verifier, challenge := pkce("d")
	a := authz{clientID: id, scope: "launch openid fhirUser user/Patient.rs patient/Observation.rs", state: "st", launch: launch, challenge: challenge}

	t.Run("another user may not take the launch", func(t *testing.T) {
		_, other, err := h.srv.NewLaunch(context.Background(), id, "doc", "355", "E1")
		if err != nil {
			t.Fatal(err)
		}
		a2 := a
		a2.launch = other
		b := h.browser()
		p := b.login(b.get(h.authorizeURL(a2)), "other", "correct horse")
		if p.status != http.StatusForbidden {
			t.Errorf("login of another user = %d, want 403", p.status)
		}
	})

	b := h.browser()
	p := b.login(b.get(h.authorizeURL(a)), "doc", "correct horse")
	if strings.Contains(p.body, `name="patient"`) {
		t.Errorf("EHR launch shows a patient picker")
	}
	p = b.consent(p, "allow", nil, "")
	code := p.url.Query().Get("code")
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, id, secret)
	if status != 200 {
		t.Fatalf("token = %d %v", status, tok)
	}
	if tok["patient"] != "355" || tok["encounter"] != "E1" || tok["need_patient_banner"] != false || tok["smart_style_url"] == nil {
		t.Errorf("EHR launch context = %v", tok)
	}
	fc, _ := tok["fhirContext"].([]any)
	if len(fc) != 1 || fc[0].(map[string]any)["reference"] != "Encounter/E1" {
		t.Errorf("fhirContext = %v", tok["fhirContext"])
	}

	t.Run("a launch is single-use", func(t *testing.T) {
		p := h.browser().get(h.authorizeURL(a))
		if p.status != http.StatusFound || p.url.Query().Get("error") != "invalid_request" || p.url.Query().Get("code") != "" {
			t.Errorf("second use of a launch = %d %s, want an invalid_request redirect", p.status, p.url)
		}
	})

	t.Run("unknown launch is an error redirect", func(t *testing.T) {
		a2 := a
		a2.launch = "made-up"
		p := h.browser().get(h.authorizeURL(a2))
		if p.status != http.StatusFound || p.url.Query().Get("error") != "invalid_request" {
			t.Errorf("unknown launch = %d %s", p.status, p.url)
		}
	})
}

func TestConsentChoices(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("openid launch/patient offline_access patient/*.cruds")
	h.user(UserSpec{Username: "mom", Role: RoleRelatedPerson, FHIRUser: "RelatedPerson/9", Patients: []string{"85", "355"}})
	lab := "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
	tests := []struct {
		name      string
		scope     string
		ticked    []string
		patient   string
		wantScope string
		wantPat   string
	}{
		{"user clears a scope", "launch/patient patient/Observation.rs patient/Condition.rs", []string{"launch/patient", "patient/Observation.rs"}, "355", "launch/patient patient/Observation.rs", "355"},
		{"granular sub-scope instead of the resource", "launch/patient patient/Observation.rs", []string{"launch/patient", lab}, "85", "launch/patient " + lab, "85"},
		{"unoffered scope is ignored", "launch/patient patient/Observation.r", []string{"launch/patient", "patient/Observation.r", "patient/Patient.cruds"}, "85", "launch/patient patient/Observation.r", "85"},
		{"v1 requested stays v1", "launch/patient patient/Observation.read", nil, "85", "launch/patient patient/Observation.read", "85"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier, challenge := pkce(string(rune('e' + i)))
			b := h.browser()
			p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: tt.scope, challenge: challenge})), "mom", "correct horse")
			if !strings.Contains(p.body, `name="patient" value="85"`) || !strings.Contains(p.body, `name="patient" value="355"`) {
				t.Fatalf("no patient picker for a related person of two patients")
			}
			if strings.Contains(tt.scope, "Observation.rs") && !strings.Contains(p.body, "laboratory") {
				t.Errorf("no category sub-scopes offered for Observation")
			}
			p = b.consent(p, "allow", tt.ticked, tt.patient)
			code := p.url.Query().Get("code")
			status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}, "client_id": {id}}, "", "")
			if status != 200 || tok["scope"] != tt.wantScope || tok["patient"] != tt.wantPat {
				t.Errorf("token = %d scope %q patient %v, want scope %q patient %q", status, tok["scope"], tok["patient"], tt.wantScope, tt.wantPat)
			}
		})
	}

	t.Run("offline_access is announced", func(t *testing.T) {
		_, challenge := pkce("z")
		b := h.browser()
		p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "offline_access patient/Observation.rs", challenge: challenge})), "mom", "correct horse")
		if !strings.Contains(p.body, "Long-lived access") {
			t.Errorf("consent page lacks the offline_access notice")
		}
	})

	t.Run("deny answers access_denied", func(t *testing.T) {
		_, challenge := pkce("y")
		b := h.browser()
		p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "patient/Observation.rs", state: "q", challenge: challenge})), "mom", "correct horse")
		p = b.consent(p, "deny", nil, "")
		if p.status != http.StatusFound || p.url.Query().Get("error") != "access_denied" || p.url.Query().Get("state") != "q" || p.url.Query().Has("code") {
			t.Errorf("deny = %d %s", p.status, p.url)
		}
	})
}

func TestAuthorizePOSTAndSSO(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("openid patient/*.rs launch/patient")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	_, challenge := pkce("p")
	u, _ := url.Parse(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge}))
	b := h.browser()
	p := b.post(h.base+"/oauth/authorize", u.Query())
	p = b.consent(b.login(p, "pat", "correct horse"), "allow", nil, "")
	if p.url.Query().Get("code") == "" {
		t.Fatalf("POST authorize: no code: %s", p.url)
	}
	// A second authorization in the same browser skips the login.
	p = b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge}))
	if p.url.Path != "/consent" {
		t.Errorf("second authorization went to %s, want /consent", p.url.Path)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("patient/*.rs")
	_, challenge := pkce("q")
	tests := []struct {
		name      string
		mod       func(q url.Values)
		wantPage  bool // an error page, never a redirect
		wantError string
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nope") }, true, ""},
		{"unregistered redirect URI", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, true, ""},
		{"missing redirect URI", func(q url.Values) { q.Del("redirect_uri") }, true, ""},
		{"wrong aud", func(q url.Values) { q.Set("aud", "https://other.example/fhir") }, false, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, false, "invalid_request"},
		{"token response type", func(q url.Values) { q.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"malformed scope", func(q url.Values) { q.Set("scope", "patient/Observation.xyz") }, false, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", state: "s", challenge: challenge}))
			q := u.Query()
			tt.mod(q)
			p := h.browser().get(h.base + "/oauth/authorize?" + q.Encode())
			if tt.wantPage {
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
					t.Errorf("got %d to %s, want a 400 error page", p.status, p.header.Get("Location"))
				}
				return
			}
			if p.status != http.StatusFound || p.url.Query().Get("error") != tt.wantError || p.url.Query().Has("code") || p.url.Query().Get("state") != "s" {
				t.Errorf("got %d %s, want an error redirect %s", p.status, p.url, tt.wantError)
			}
		})
	}
	t.Run("loopback redirect with any port", func(t *testing.T) {
		p := h.browser().get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", redirect: "http://127.0.0.1:54321/callback", challenge: challenge}))
		if p.url.Path != "/login" {
			t.Errorf("loopback redirect on another port: got %d %s", p.status, p.url)
		}
	})
	t.Run("refused wildcard", func(t *testing.T) {
		h2 := newHarness(t, func(c *Config) { c.RefuseWildcardScopes = true })
		id2 := h2.clientPublic("patient/*.rs")
		p := h2.browser().get(h2.authorizeURL(authz{clientID: id2, scope: "patient/*.rs", challenge: challenge}))
		if p.url.Query().Get("error") != "invalid_scope" {
			t.Errorf("wildcard with RefuseWildcardScopes: %s", p.url)
		}
	})
}

func TestFormsNeedCSRF(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	_, challenge := pkce("r")
	b := h.browser()
	p := b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge}))
	if p.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("login page lacks anti-framing header")
	}
	p = b.post(h.base+"/login", url.Values{"username": {"pat"}, "password": {"correct horse"}})
	if p.status != http.StatusForbidden {
		t.Errorf("login without CSRF token = %d, want 403", p.status)
	}
	p = b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge})), "pat", "correct horse")
	p2 := b.post(h.base+"/consent", url.Values{"decision": {"allow"}, "scope": {"patient/*.rs"}, "csrf_token": {"wrong"}})
	if p2.status != http.StatusForbidden {
		t.Errorf("consent with a wrong CSRF token = %d, want 403", p2.status)
	}
	if p3 := b.consent(p, "allow", nil, ""); p3.url.Query().Get("code") == "" {
		t.Errorf("consent with the right token failed: %s", p3.url)
	}
}

func TestLoginLockout(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	_, challenge := pkce("s")
	b := h.browser()
	start := b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge}))
	for range 5 {
		if p := b.login(start, "pat", "wrong password"); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password = %d, want 401", p.status)
		}
	}
	if p := b.login(start, "pat", "correct horse"); p.status != http.StatusUnauthorized {
		t.Errorf("right password while locked = %d, want 401", p.status)
	}
	h.clock.Advance(16 * time.Minute)
	if p := b.login(start, "pat", "correct horse"); p.url.Path != "/consent" {
		t.Errorf("right password after the lockout = %d %s, want the consent page", p.status, p.url)
	}
}

func TestTokenErrors(t *testing.T) {
	h := newHarness(t)
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "openid offline_access patient/*.rs launch/patient system/*.rs"})
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	verifier, challenge := pkce("t")
	newCode := func() string {
		return h.code(authz{clientID: id, scope: "launch/patient offline_access patient/*.rs", challenge: challenge}, "pat")
	}
	exchange := func(code string, mod func(url.Values)) url.Values {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
		if mod != nil {
			mod(f)
		}
		return f
	}
	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"missing verifier", exchange(newCode(), func(f url.Values) { f.Del("code_verifier") }), id, secret, 400, "invalid_request"},
		{"empty verifier", exchange(newCode(), func(f url.Values) { f.Set("code_verifier", "") }), id, secret, 400, "invalid_request"},
		{"wrong verifier", exchange(newCode(), func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 64)) }), id, secret, 400, "invalid_grant"},
		{"verifier equal to the challenge", exchange(newCode(), func(f url.Values) { f.Set("code_verifier", challenge) }), id, secret, 400, "invalid_grant"},
		{"bad code", exchange("not-a-code", nil), id, secret, 400, "invalid_grant"},
		{"wrong redirect URI", exchange(newCode(), func(f url.Values) { f.Set("redirect_uri", "http://127.0.0.1:7777/other") }), id, secret, 400, "invalid_grant"},
		{"bad client secret", exchange(newCode(), nil), id, "wrong", 401, "invalid_client"},
		{"unknown client", exchange(newCode(), nil), "nobody", "x", 401, "invalid_client"},
		{"bad grant type", url.Values{"grant_type": {"password"}}, id, secret, 400, "unsupported_grant_type"},
		{"no grant type", url.Values{}, id, secret, 400, "invalid_request"},
		{"secret client without secret", exchange(newCode(), func(f url.Values) { f.Set("client_id", id) }), "", "", 401, "invalid_client"},
		{"two auth methods", exchange(newCode(), func(f url.Values) { f.Set("client_secret", secret); f.Set("client_id", id) }), id, secret, 400, "invalid_request"},
		{"bad assertion type", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}, "client_assertion_type": {"urn:other"}, "client_assertion": {"x"}}, "", "", 401, "invalid_client"},
		{"client_credentials with a patient scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"patient/*.rs"}}, id, secret, 400, "invalid_scope"},
		{"client_credentials without scope", url.Values{"grant_type": {"client_credentials"}}, id, secret, 400, "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := h.tokenReq(tt.form, tt.id, tt.secret)
			if status != tt.wantStatus || body["error"] != tt.wantError {
				t.Errorf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("error response lacks Cache-Control: no-store")
			}
		})
	}

	t.Run("replayed code revokes what it issued", func(t *testing.T) {
		code := newCode()
		status, tok, _ := h.tokenReq(exchange(code, nil), id, secret)
		if status != 200 {
			t.Fatalf("first exchange = %d %v", status, tok)
		}
		status, body, _ := h.tokenReq(exchange(code, nil), id, secret)
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("replay = %d %v", status, body)
		}
		h.clock.Advance(6 * time.Second)
		if _, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a replayed code still works: %v", err)
		}
		status, body, _ = h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}, id, secret)
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh token of a replayed code = %d %v", status, body)
		}
	})

	t.Run("expired code", func(t *testing.T) {
		code := newCode()
		h.clock.Advance(61 * time.Second)
		status, body, _ := h.tokenReq(exchange(code, nil), id, secret)
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("expired code = %d %v", status, body)
		}
	})

	t.Run("client secret post and client_credentials", func(t *testing.T) {
		status, tok, _ := h.tokenReq(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs system/Patient.read"}, "client_id": {id}, "client_secret": {secret}}, "", "")
		if status != 200 || tok["expires_in"] != float64(300) || tok["scope"] != "system/Observation.rs system/Patient.read" || tok["refresh_token"] != nil {
			t.Errorf("client_credentials = %d %v", status, tok)
		}
		info, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string))
		if err != nil || info.Username != "" || info.ClientID != id {
			t.Errorf("Authenticate of a system token = %+v, %v", info, err)
		}
	})

	t.Run("disabled client stops at once", func(t *testing.T) {
		status, tok, _ := h.tokenReq(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, id, secret)
		if status != 200 {
			t.Fatal(status, tok)
		}
		if err := h.srv.SetClientStatus(context.Background(), id, Disabled); err != nil {
			t.Fatal(err)
		}
		status, in, _ := h.postJSON("/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}}, id, secret)
		if status != 401 {
			t.Errorf("introspection by a disabled client = %d %v", status, in)
		}
		if _, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a disabled client still works: %v", err)
		}
		status, body, _ := h.tokenReq(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}}, id, secret)
		if status != 401 || body["error"] != "invalid_client" {
			t.Errorf("disabled client token request = %d %v", status, body)
		}
	})
}

func TestKeyRotationKeepsOldKeysPublished(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	set1, err := h.srv.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := h.srv.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set2, _ := h.srv.JWKS(ctx)
	if len(set2.Keys) != 2 || set2.Keys[0].KeyID != kid || set2.Keys[1].KeyID != set1.Keys[0].KeyID {
		t.Fatalf("JWKS after rotation = %v", set2.Keys)
	}
	h.clock.Advance(2 * time.Hour)
	set3, _ := h.srv.JWKS(ctx)
	if len(set3.Keys) != 1 || set3.Keys[0].KeyID != kid {
		t.Errorf("JWKS long after rotation = %d keys", len(set3.Keys))
	}
	resp, err := http.Get(h.base + "/oauth/jwks")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `"d":`) {
		t.Errorf("published JWKS holds a private key")
	}
}
