package smart

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtBearerAssertion is the client_assertion_type of RFC 7523 §2.2.
const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime is how far ahead an assertion's exp may be (SMART
// Backend Services §"Authenticating to the Token endpoint": "no more than
// five minutes in the future").
const maxAssertionLifetime = 5 * time.Minute

// assertionLeeway tolerates clock skew between the client and us.
const assertionLeeway = 30 * time.Second

// authMethod is how a client authenticated at a token-type endpoint.
type authMethod string

const (
	authNone   authMethod = "none"
	authBasic  authMethod = "client_secret_basic"
	authPost   authMethod = "client_secret_post"
	authJWT    authMethod = "private_key_jwt"
	authPublic            = authNone
)

var errBadClient = func(basic bool) *oauthError {
	return &oauthError{Code: "invalid_client", Description: "client authentication failed", basicAuth: basic}
}

// authenticateClient authenticates the caller of the token, introspection
// or revocation endpoint by exactly one method (RFC 6749 §2.3: "MUST NOT
// use more than one authentication method in each request"):
// client_secret_basic (§2.3.1), client_secret_post (§2.3.1),
// private_key_jwt (RFC 7523 §2.2, SMART Backend Services) or, for public
// clients, client_id alone (§2.3, §3.2.1).
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*Client, authMethod, error) {
	id, secret, basic := r.BasicAuth()
	assertionType, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	methods := 0
	for _, used := range []bool{basic, form.Has("client_secret"), form.Has("client_assertion_type") || form.Has("client_assertion")} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return nil, "", errf("invalid_request", "use exactly one client authentication method")
	}
	var c *Client
	var method authMethod
	switch {
	case basic:
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, "", errBadClient(true)
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return nil, "", errf("invalid_request", "client_id differs from the authenticated client")
		}
		got, err := s.checkSecret(ctx, id, secret)
		if err != nil {
			if errors.Is(err, errAuthFailed) {
				return nil, "", errBadClient(true)
			}
			return nil, "", err
		}
		c, method = got, authBasic
	case form.Has("client_secret"):
		got, err := s.checkSecret(ctx, form.Get("client_id"), form.Get("client_secret"))
		if err != nil {
			if errors.Is(err, errAuthFailed) {
				return nil, "", errBadClient(false)
			}
			return nil, "", err
		}
		c, method = got, authPost
	case form.Has("client_assertion_type") || form.Has("client_assertion"):
		if assertionType != jwtBearerAssertion {
			return nil, "", &oauthError{Code: "invalid_client", Description: "unsupported client_assertion_type"}
		}
		got, err := s.checkAssertion(ctx, assertion, form.Get("client_id"))
		if err != nil {
			var oe *oauthError
			if errors.Is(err, errAuthFailed) || errors.As(err, &oe) {
				s.logger(ctx).InfoContext(ctx, "client assertion refused", "reason", err.Error())
				return nil, "", errBadClient(false)
			}
			return nil, "", err
		}
		c, method = got, authJWT
	default:
		id := form.Get("client_id")
		if id == "" {
			return nil, "", errBadClient(false)
		}
		got, err := s.store.Client(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, "", errBadClient(false)
		}
		if err != nil {
			return nil, "", err
		}
		if got.Type != Public {
			return nil, "", errBadClient(false)
		}
		c, method = got, authPublic
	}
	if c.Status != Approved {
		return nil, "", &oauthError{Code: "invalid_client", Description: "the client is not approved", basicAuth: method == authBasic}
	}
	return c, method, nil
}

var errAuthFailed = errors.New("authentication failed")

func (s *Server) checkSecret(ctx context.Context, id, secret string) (*Client, error) {
	if id == "" || secret == "" {
		return nil, errAuthFailed
	}
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, errAuthFailed
	}
	if err != nil {
		return nil, err
	}
	got := sha256.Sum256([]byte(secret))
	if c.Type != ConfidentialSymmetric || subtle.ConstantTimeCompare(got[:], c.SecretHash) != 1 {
		return nil, errAuthFailed
	}
	return c, nil
}

// checkAssertion verifies a private_key_jwt client assertion: RFC 7523
// §3 (iss = sub = client_id, aud = the token endpoint, exp, jti not
// reused) with SMART Backend Services' limits (RS384 or ES384, exp at most
// five minutes ahead, kid selects the key of the client's JWKS).
func (s *Server) checkAssertion(ctx context.Context, assertion, formClientID string) (*Client, error) {
	// ParseSigned refuses every algorithm not listed, "none" included.
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384, jose.ES384})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errAuthFailed, err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fmt.Errorf("%w: %v", errAuthFailed, err)
	}
	id := unverified.Issuer
	if id == "" || (formClientID != "" && formClientID != id) {
		return nil, fmt.Errorf("%w: iss does not name the client", errAuthFailed)
	}
	c, err := s.store.Client(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown client", errAuthFailed)
	}
	if err != nil {
		return nil, err
	}
	if c.Type != ConfidentialAsymmetric {
		return nil, fmt.Errorf("%w: client is not asymmetric", errAuthFailed)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: one signature expected", errAuthFailed)
	}
	kid := tok.Headers[0].KeyID
	key, err := s.clientKey(ctx, c, kid)
	if err != nil {
		return nil, err
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errAuthFailed, err)
	}
	now := s.now()
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: c.ID, Subject: c.ID, AnyAudience: jwt.Audience{s.tokenURL}, Time: now}, assertionLeeway); err != nil {
		return nil, fmt.Errorf("%w: %v", errAuthFailed, err)
	}
	if claims.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", errAuthFailed)
	}
	exp := claims.Expiry.Time()
	if exp.After(now.Add(maxAssertionLifetime + assertionLeeway)) {
		return nil, fmt.Errorf("%w: exp more than five minutes ahead", errAuthFailed)
	}
	if claims.ID == "" {
		return nil, fmt.Errorf("%w: no jti", errAuthFailed)
	}
	if err := s.store.UseJTI(ctx, c.ID, claims.ID, exp.Add(assertionLeeway)); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("%w: jti replayed", errAuthFailed)
		}
		return nil, err
	}
	return c, nil
}

// clientKey finds the key kid names in the client's JWKS (inline, or at
// its URL). Only RS384/ES384-capable public keys qualify.
func (s *Server) clientKey(ctx context.Context, c *Client, kid string) (*jose.JSONWebKey, error) {
	pick := func(set *jose.JSONWebKeySet) *jose.JSONWebKey {
		for _, k := range set.Keys {
			if (kid == "" || k.KeyID == kid) && k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
				if kid == "" && len(set.Keys) > 1 {
					return nil // ambiguous: SMART requires kid
				}
				return &k
			}
		}
		return nil
	}
	if len(c.JWKS) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return nil, fmt.Errorf("client %s inline JWKS: %w", c.ID, err)
		}
		if k := pick(&set); k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w: no key %q", errAuthFailed, kid)
	}
	if c.JWKSURL == "" {
		return nil, fmt.Errorf("%w: client has no keys", errAuthFailed)
	}
	set, fresh, err := s.jwks.get(ctx, s, c.JWKSURL, false)
	if err != nil {
		return nil, err
	}
	if k := pick(set); k != nil {
		return k, nil
	}
	if !fresh {
		// A key we do not know may be a new one: refetch, at most once per
		// jwksRefetchEvery per URL, so that assertions with made-up kids
		// cannot make us hammer the client's server.
		if set, _, err = s.jwks.get(ctx, s, c.JWKSURL, true); err != nil {
			return nil, err
		}
		if k := pick(set); k != nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no key %q", errAuthFailed, kid)
}

// jwksCache keeps fetched client JWKS for as long as their Cache-Control
// max-age allows (RFC 9111 §5.2.2.1); without one, they are fetched every
// time.
type jwksCache struct {
	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	set     *jose.JSONWebKeySet
	fetched time.Time
	until   time.Time
}

// jwksRefetchEvery bounds how often an unknown kid makes a cached JWKS be
// fetched again before its max-age ends.
const jwksRefetchEvery = 30 * time.Second

// get returns the JWKS at u and whether it was fetched just now. With
// force it fetches even a cached set, unless that was fetched less than
// jwksRefetchEvery ago.
func (c *jwksCache) get(ctx context.Context, s *Server, u string, force bool) (*jose.JSONWebKeySet, bool, error) {
	now := s.now()
	c.mu.Lock()
	e := c.entries[u]
	c.mu.Unlock()
	if e != nil && now.Before(e.until) && (!force || now.Sub(e.fetched) < jwksRefetchEvery) {
		return e.set, false, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("%w: JWKS URL: %v", errAuthFailed, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("%w: fetching JWKS: %v", errAuthFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("%w: fetching JWKS: HTTP %d", errAuthFailed, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, false, fmt.Errorf("%w: reading JWKS: %v", errAuthFailed, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, false, fmt.Errorf("%w: JWKS: %v", errAuthFailed, err)
	}
	if maxAge := cacheMaxAge(resp.Header.Get("Cache-Control")); maxAge > 0 {
		c.mu.Lock()
		if len(c.entries) > 1000 {
			clear(c.entries)
		}
		c.entries[u] = &jwksEntry{&set, now, now.Add(maxAge)}
		c.mu.Unlock()
	}
	return &set, true, nil
}

// cacheMaxAge reads max-age from a Cache-Control header; no-store and
// no-cache mean zero.
func cacheMaxAge(cc string) time.Duration {
	var age time.Duration
	for d := range strings.SplitSeq(cc, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			n, err := strconv.Atoi(strings.Trim(d[len("max-age="):], `"`))
			if err == nil && n > 0 {
				age = time.Duration(min(n, 86400)) * time.Second
			}
		}
	}
	return age
}
