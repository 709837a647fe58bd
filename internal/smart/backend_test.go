package smart

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// backendClient is a SMART Backend Services client with its keys served
// from a JWKS URL.
type backendClient struct {
	id      string
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	fetches atomic.Int32
}

func newBackendClient(t *testing.T, h *harness, cacheControl string) *backendClient {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bc := &backendClient{rsa: rk, ec: ek}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rk.PublicKey, KeyID: "rsa-1", Algorithm: "RS384", Use: "sig"},
		{Key: &ek.PublicKey, KeyID: "ec-1", Algorithm: "ES384", Use: "sig"},
	}}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bc.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(ts.Close)
	bc.id, _ = h.client(ClientSpec{Type: ConfidentialAsymmetric, Scopes: "system/*.rs", JWKSURL: ts.URL + "/jwks.json"})
	return bc
}

type assertion struct {
	alg      jose.SignatureAlgorithm
	kid      string
	key      crypto.Signer
	iss, sub string
	aud      string
	exp      time.Duration
	jti      string
}

func (h *harness) sign(t *testing.T, a assertion) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: jose.JSONWebKey{Key: a.key, KeyID: a.kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	c := jwt.Claims{Issuer: a.iss, Subject: a.sub, Audience: jwt.Audience{a.aud}, Expiry: jwt.NewNumericDate(now.Add(a.exp)), ID: a.jti, IssuedAt: jwt.NewNumericDate(now)}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (bc *backendClient) assertion(h *harness, alg jose.SignatureAlgorithm, jti string) assertion {
	a := assertion{alg: alg, iss: bc.id, sub: bc.id, aud: h.base + "/oauth/token", exp: 4 * time.Minute, jti: jti}
	if alg == jose.RS384 {
		a.kid, a.key = "rsa-1", bc.rsa
	} else {
		a.kid, a.key = "ec-1", bc.ec
	}
	return a
}

func ccForm(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Observation.rs"},
		"client_assertion_type": {jwtBearerAssertion}, "client_assertion": {assertion}}
}

func TestBackendServices(t *testing.T) {
	h := newHarness(t)
	bc := newBackendClient(t, h, "public, max-age=300")
	for _, alg := range []jose.SignatureAlgorithm{jose.RS384, jose.ES384} {
		t.Run(string(alg), func(t *testing.T) {
			status, tok, _ := h.tokenReq(ccForm(h.sign(t, bc.assertion(h, alg, "jti-"+string(alg)))), "", "")
			if status != 200 || tok["scope"] != "system/Observation.rs" || tok["expires_in"] != float64(300) {
				t.Fatalf("client_credentials with %s = %d %v", alg, status, tok)
			}
		})
	}
	if got := bc.fetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times under max-age=300, want 1", got)
	}
	h.clock.Advance(301 * time.Second)
	h.tokenReq(ccForm(h.sign(t, bc.assertion(h, jose.RS384, "jti-after"))), "", "")
	if got := bc.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times after max-age passed, want 2", got)
	}

	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name string
		mod  func(a *assertion)
	}{
		{"wrong iss", func(a *assertion) { a.iss = "someone-else" }},
		{"wrong sub", func(a *assertion) { a.sub = "someone-else" }},
		{"wrong aud", func(a *assertion) { a.aud = "https://other.example/token" }},
		{"expired", func(a *assertion) { a.exp = -2 * time.Minute }},
		{"exp too far ahead", func(a *assertion) { a.exp = 30 * time.Minute }},
		{"no jti", func(a *assertion) { a.jti = "" }},
		{"bad signature", func(a *assertion) { a.key = other }},
		{"unknown kid", func(a *assertion) { a.kid = "nope" }},
		{"RS256 not allowed", func(a *assertion) { a.alg = jose.RS256 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := bc.assertion(h, jose.RS384, "neg-"+string(rune('a'+i)))
			tt.mod(&a)
			status, body, _ := h.tokenReq(ccForm(h.sign(t, a)), "", "")
			if status != 401 || body["error"] != "invalid_client" {
				t.Errorf("got %d %v, want 401 invalid_client", status, body)
			}
		})
	}
	t.Run("replayed jti", func(t *testing.T) {
		s := h.sign(t, bc.assertion(h, jose.ES384, "once"))
		if status, body, _ := h.tokenReq(ccForm(s), "", ""); status != 200 {
			t.Fatalf("first use = %d %v", status, body)
		}
		if status, body, _ := h.tokenReq(ccForm(s), "", ""); status != 401 || body["error"] != "invalid_client" {
			t.Errorf("replay = %d %v", status, body)
		}
	})
	t.Run("alg none", func(t *testing.T) {
		claims := `{"iss":"` + bc.id + `","sub":"` + bc.id + `","aud":"` + h.base + `/oauth/token","exp":` + jsonNum(h.clock.Now().Add(time.Minute).Unix()) + `,"jti":"none-1"}`
		none := b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(claims) + "."
		if status, body, _ := h.tokenReq(ccForm(none), "", ""); status != 401 || body["error"] != "invalid_client" {
			t.Errorf("alg none = %d %v", status, body)
		}
	})
	t.Run("inline JWKS", func(t *testing.T) {
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &bc.ec.PublicKey, KeyID: "k", Algorithm: "ES384"}}})
		id, _ := h.client(ClientSpec{Type: ConfidentialAsymmetric, Scopes: "system/Patient.rs", JWKS: set})
		a := assertion{alg: jose.ES384, kid: "k", key: bc.ec, iss: id, sub: id, aud: h.base + "/oauth/token", exp: time.Minute, jti: "inline"}
		f := ccForm(h.sign(t, a))
		f.Set("scope", "system/*.rs")
		status, tok, _ := h.tokenReq(f, "", "")
		if status != 200 || tok["scope"] != "system/Patient.rs" {
			t.Errorf("inline JWKS = %d %v", status, tok)
		}
	})
}

func TestBackendJWKSWithoutCaching(t *testing.T) {
	h := newHarness(t)
	bc := newBackendClient(t, h, "no-store")
	for i := range 2 {
		if status, body, _ := h.tokenReq(ccForm(h.sign(t, bc.assertion(h, jose.ES384, "j"+string(rune('0'+i))))), "", ""); status != 200 {
			t.Fatalf("token = %d %v", status, body)
		}
	}
	if got := bc.fetches.Load(); got != 2 {
		t.Errorf("JWKS under no-store fetched %d times, want 2", got)
	}
}

func TestCacheMaxAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                     0,
		"max-age=60":           time.Minute,
		"public, max-age=300":  5 * time.Minute,
		"max-age=60, no-store": 0,
		"no-cache":             0,
		"max-age=abc":          0,
		"max-age=999999999":    24 * time.Hour,
	} {
		if got := cacheMaxAge(in); got != want {
			t.Errorf("cacheMaxAge(%q) = %v, want %v", in, got, want)
		}
	}
}
