package smart

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// grantTokens runs a standalone launch for a public client and exchanges
// the code.
func (h *harness) grantTokens(t *testing.T, id, scope string) map[string]any {
	t.Helper()
	verifier, challenge := pkce("g")
	code := h.code(authz{clientID: id, scope: scope, challenge: challenge}, "pat")
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_id": {id}}, "", "")
	if status != 200 {
		t.Fatalf("exchange = %d %v", status, tok)
	}
	return tok
}

func TestRevocation(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("openid offline_access patient/*.rs")
	other := h.clientPublic("patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	tok := h.grantTokens(t, id, "offline_access patient/*.rs")
	revoke := func(client, token string) (int, map[string]any) {
		status, body, _ := h.postJSON("/oauth/revoke", url.Values{"token": {token}, "client_id": {client}}, "", "")
		return status, body
	}
	// RFC 7009 §2.2: an invalid token is no error.
	t.Run("unknown token answers 200", func(t *testing.T) {
		if status, body := revoke(id, "never-issued"); status != 200 {
			t.Errorf("revoking an unknown token = %d %v, want 200", status, body)
		}
	})
	// RFC 7009 §2.1: the token must have been issued to the caller.
	t.Run("another client's token is refused and stays valid", func(t *testing.T) {
		status, body := revoke(other, tok["access_token"].(string))
		if status != 400 || body["error"] != "unauthorized_client" {
			t.Errorf("revoking another client's token = %d %v, want 400 unauthorized_client", status, body)
		}
		if _, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string)); err != nil {
			t.Errorf("token after a refused revocation: %v", err)
		}
	})
	t.Run("access token ends at once, twice is still 200", func(t *testing.T) {
		for i := range 2 {
			if status, body := revoke(id, tok["access_token"].(string)); status != 200 {
				t.Fatalf("revocation %d = %d %v", i+1, status, body)
			}
		}
		if _, err := h.srv.Authenticate(context.Background(), tok["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("revoked access token: %v, want ErrInvalidToken", err)
		}
	})
}

func TestUserinfoChallenge(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name, auth string
		wantError  bool
	}{
		{"no token: no error code (RFC 6750 §3.1)", "", false},
		{"bad token: invalid_token", "Bearer nonsense", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", h.base+"/oauth/userinfo", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ch := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != 401 || !strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "error=") != tt.wantError {
				t.Errorf("got %d %q, want 401 with error code %v", resp.StatusCode, ch, tt.wantError)
			}
		})
	}
}

func TestAuthorizeRequiresState(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("patient/*.rs")
	_, challenge := pkce("q")
	p := h.browser().get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge, noState: true}))
	if p.status != http.StatusFound || p.url.Query().Get("error") != "invalid_request" || p.url.Query().Has("code") {
		t.Errorf("authorize without state = %d %s, want an invalid_request redirect", p.status, p.url)
	}
}

func TestConsentPageAllowsTheRedirectInFormAction(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	_, challenge := pkce("c")
	b := h.browser()
	p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge})), "pat", "correct horse")
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://127.0.0.1:7777;") {
		t.Errorf("consent page CSP = %q, want form-action to allow the redirect URI's origin", csp)
	}
}

func TestDisablingAClientEndsItsTokensForGood(t *testing.T) {
	h := newHarness(t)
	id := h.clientPublic("offline_access patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	tok := h.grantTokens(t, id, "offline_access patient/*.rs")
	ctx := context.Background()
	if _, err := h.srv.Authenticate(ctx, tok["access_token"].(string)); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.SetClientStatus(ctx, id, Disabled); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.SetClientStatus(ctx, id, Approved); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(10 * time.Second) // past any cache
	if _, err := h.srv.Authenticate(ctx, tok["access_token"].(string)); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("access token after disable and re-approve: %v, want ErrInvalidToken", err)
	}
	status, body, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {id}}, "", "")
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh after disable and re-approve = %d %v, want invalid_grant", status, body)
	}
}

func TestRetiredKeyOutlivesTheLastTokenItCanSign(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old, err := h.srv.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	has := func() bool {
		set, err := h.srv.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(set.Key(old.Keys[0].KeyID)) == 1
	}
	// Another replica may sign with the old key for keyRefresh after the
	// rotation; its id_token lives idTokenLifetime more.
	h.clock.Advance(idTokenLifetime + keyRefresh/2)
	if !has() {
		t.Errorf("retired key gone %v after rotation, want it published until %v", idTokenLifetime+keyRefresh/2, retiredKeyKept)
	}
	h.clock.Advance(keyRefresh + time.Second) // also past the reload interval
	if has() {
		t.Errorf("retired key still published %v after rotation", idTokenLifetime+3*keyRefresh/2+time.Second)
	}
}

func TestLoginLimitPerAddress(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LoginMaxAddressFailures = 6 })
	id := h.clientPublic("patient/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	_, challenge := pkce("l")
	b := h.browser()
	start := b.get(h.authorizeURL(authz{clientID: id, scope: "patient/*.rs", challenge: challenge}))
	// Two failures for each of three names: no name is locked (5), but the
	// address reaches its 6.
	for _, name := range []string{"a", "b", "c", "a", "b", "c"} {
		if p := b.login(start, name, "wrong password"); p.status != http.StatusUnauthorized {
			t.Fatalf("wrong password = %d", p.status)
		}
	}
	if p := b.login(start, "pat", "correct horse"); p.status != http.StatusUnauthorized {
		t.Errorf("right password from a locked address = %d, want 401", p.status)
	}
	// The locked address did not count against pat.
	st, err := h.store.LoginState(context.Background(), "user:pat")
	if err == nil && st.Failures > 0 {
		t.Errorf("failures counted against a name while the address was locked: %+v", st)
	}
	h.clock.Advance(16 * time.Minute)
	if p := b.login(start, "pat", "correct horse"); p.url.Path != "/consent" {
		t.Errorf("after the lockout = %d %s, want the consent page", p.status, p.url)
	}
}

func TestSweepForgetsOldState(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.store.RecordLoginFailure(ctx, "user:x", h.clock.Now(), time.Minute, 5, time.Minute); err != nil {
		t.Fatal(err)
	}
	cc := &Grant{ID: "cc", ClientID: "c", Scopes: "system/*.rs", Created: h.clock.Now()}
	if err := h.store.CreateGrant(ctx, cc); err != nil {
		t.Fatal(err)
	}
	if err := h.store.CreateToken(ctx, &Token{Hash: hash("t"), Kind: AccessToken, GrantID: "cc", ClientID: "c", Issued: h.clock.Now(), Expires: h.clock.Now().Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Hour)
	if err := h.srv.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.LoginState(ctx, "user:x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old login failures kept: %v", err)
	}
	if _, err := h.store.Grant(ctx, "cc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("client_credentials grant kept after its token expired: %v", err)
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	h := newHarness(t)
	bc := newBackendClient(t, h, "public, max-age=300")
	unknown := func(jti string) {
		a := bc.assertion(h, jose.RS384, jti)
		a.kid = "rotated-" + jti
		if status, _, _ := h.tokenReq(ccForm(h.sign(t, a)), "", ""); status != 401 {
			t.Fatalf("unknown kid = %d, want 401", status)
		}
	}
	want := func(n int32, when string) {
		t.Helper()
		if got := bc.fetches.Load(); got != n {
			t.Errorf("fetches %s = %d, want %d", when, got, n)
		}
	}
	unknown("1")
	want(1, "after the first assertion")
	h.clock.Advance(jwksRefetchEvery + time.Second)
	unknown("2")
	want(2, "after an unknown kid with a cached set")
	unknown("3")
	unknown("4")
	want(2, "after more unknown kids at once")
	h.clock.Advance(jwksRefetchEvery + time.Second)
	unknown("5")
	want(3, "after the refetch interval")
}

func TestJWKSURLMustBeHTTPS(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		url    string
		wantOK bool
	}{
		{"https://app.example/jwks.json", true},
		{"http://127.0.0.1:9000/jwks.json", true},
		{"http://localhost:9000/jwks.json", true},
		{"http://app.example/jwks.json", false},
		{"ftp://app.example/jwks.json", false},
	} {
		_, _, err := h.srv.RegisterClient(context.Background(), ClientSpec{Name: "b", Type: ConfidentialAsymmetric, Scopes: "system/*.rs", JWKSURL: tt.url})
		if (err == nil) != tt.wantOK {
			t.Errorf("JWKS URL %s: err = %v, want ok %v", tt.url, err, tt.wantOK)
		}
	}
}

// zeros then dashes: the first 16 bytes encode to an id starting with "-".
type dashFirst struct{ n int }

func (d *dashFirst) Read(p []byte) (int, error) {
	for i := range p {
		if d.n < 16 {
			p[i] = 0xfb // base64url "-" is 62: 0b111110
		} else {
			p[i] = byte(d.n)
		}
		d.n++
	}
	return len(p), nil
}

func TestClientIDNeverLooksLikeAFlag(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Rand = &dashFirst{} })
	id, _, err := h.srv.RegisterClient(context.Background(), ClientSpec{Name: "a", Type: Public, RedirectURIs: []string{redirect}, Scopes: "patient/*.rs"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(id, "-") || id == "" {
		t.Errorf("client id = %q, want one not starting with -", id)
	}
}
