package smart

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"smartfhir/internal/access"
)

// grantHandler answers one grant_type of the token endpoint.
type grantHandler interface {
	grant(ctx context.Context, c *Client, method authMethod, form url.Values) (*tokenResponse, error)
}

// tokenResponse is RFC 6749 §5.1 with SMART App Launch 2.2's launch
// context parameters.
type tokenResponse struct {
	AccessToken       string           `json:"access_token"`
	TokenType         string           `json:"token_type"`
	ExpiresIn         int64            `json:"expires_in"`
	Scope             string           `json:"scope"`
	RefreshToken      string           `json:"refresh_token,omitempty"`
	IDToken           string           `json:"id_token,omitempty"`
	Patient           string           `json:"patient,omitempty"`
	Encounter         string           `json:"encounter,omitempty"`
	NeedPatientBanner *bool            `json:"need_patient_banner,omitempty"`
	SMARTStyleURL     string           `json:"smart_style_url,omitempty"`
	FHIRContext       []map[string]any `json:"fhirContext,omitempty"`
}

// handleToken is the token endpoint (RFC 6749 §3.2).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(r, false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.token(r.Context(), r, form)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(ctx context.Context, r *http.Request, form url.Values) (*tokenResponse, error) {
	gt := form.Get("grant_type")
	if gt == "" {
		return nil, errf("invalid_request", "grant_type is required")
	}
	h, ok := s.grants[gt]
	if !ok {
		return nil, errf("unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	c, method, err := s.authenticateClient(ctx, r, form)
	if err != nil {
		return nil, err
	}
	return h.grant(ctx, c, method, form)
}

// authorizationCodeGrant exchanges an authorization code: RFC 6749 §4.1.3,
// PKCE verification (RFC 7636 §4.6), SMART App Launch 2.2 §"Obtain access
// token". A code is single-use; exchanging it twice revokes the grant it
// made (RFC 6749 §4.1.2, §10.5).
type authorizationCodeGrant struct{ s *Server }

func (h authorizationCodeGrant) grant(ctx context.Context, c *Client, _ authMethod, form url.Values) (*tokenResponse, error) {
	s := h.s
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" {
		return nil, errf("invalid_request", "code is required")
	}
	if form.Get("redirect_uri") == "" {
		return nil, errf("invalid_request", "redirect_uri is required")
	}
	if verifier == "" {
		return nil, errf("invalid_request", "code_verifier is required")
	}
	if !validVerifier(verifier) {
		return nil, errf("invalid_grant", "code_verifier is malformed")
	}
	stored, err := s.store.UseCode(ctx, hash(code))
	if errors.Is(err, ErrNotFound) {
		return nil, errf("invalid_grant", "unknown code")
	}
	if err != nil {
		return nil, err
	}
	if stored.Used {
		if err := s.store.RevokeGrant(ctx, stored.GrantID); err != nil {
			return nil, err
		}
		s.forgetAllBearers()
		s.logger(ctx).WarnContext(ctx, "authorization code replayed; grant revoked", "client_id", stored.ClientID, "grant", stored.GrantID)
		return nil, errf("invalid_grant", "code already used")
	}
	if !s.now().Before(stored.Expires) {
		return nil, errf("invalid_grant", "code expired")
	}
	if stored.ClientID != c.ID {
		return nil, errf("invalid_grant", "code was issued to another client")
	}
	if stored.RedirectURI != form.Get("redirect_uri") {
		return nil, errf("invalid_grant", "redirect_uri differs from the authorization request")
	}
	// RFC 7636 §4.6 with S256 only. A verifier equal to the challenge is
	// someone replaying what they saw on the front channel.
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if verifier == stored.CodeChallenge || subtle.ConstantTimeCompare([]byte(want), []byte(stored.CodeChallenge)) != 1 {
		return nil, errf("invalid_grant", "code_verifier does not match the code_challenge")
	}
	g, err := s.store.Grant(ctx, stored.GrantID)
	if err != nil {
		return nil, fmt.Errorf("grant of code: %w", err)
	}
	if err := s.usableGrant(ctx, g); err != nil {
		return nil, err
	}
	scopes, err := access.ParseSet(g.Scopes)
	if err != nil {
		return nil, fmt.Errorf("stored scopes of grant %s: %w", g.ID, err)
	}
	return s.issue(ctx, c, g, scopes, scopes, g.Nonce)
}

// validVerifier checks RFC 7636 §4.1: 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := range len(v) {
		ch := v[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			return false
		}
	}
	return true
}

// refreshTokenGrant is RFC 6749 §6 with rotation: every use returns a new
// refresh token, and a second use of an old one revokes the whole grant
// (OAuth 2.0 Security BCP §4.14.2). An optional scope may only narrow, and
// narrows only the new access token: the new refresh token keeps the scope
// of the original grant (RFC 6749 §6: "the new refresh token scope MUST be
// identical to that of the refresh token included by the client in the
// request"), so that asking for less once, offline_access included, does
// not end refreshing.
type refreshTokenGrant struct{ s *Server }

func (h refreshTokenGrant) grant(ctx context.Context, c *Client, _ authMethod, form url.Values) (*tokenResponse, error) {
	s := h.s
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, errf("invalid_request", "refresh_token is required")
	}
	if len(rt) > 512 {
		return nil, errf("invalid_grant", "unknown refresh token")
	}
	old, err := s.store.Token(ctx, hash(rt))
	if errors.Is(err, ErrNotFound) {
		return nil, errf("invalid_grant", "unknown refresh token")
	}
	if err != nil {
		return nil, err
	}
	if old.Kind != RefreshToken {
		return nil, errf("invalid_grant", "unknown refresh token")
	}
	if old.ClientID != c.ID {
		return nil, errf("invalid_grant", "refresh token was issued to another client")
	}
	if old.Revoked || !s.now().Before(old.Expires) {
		return nil, errf("invalid_grant", "refresh token expired or revoked")
	}
	g, err := s.store.Grant(ctx, old.GrantID)
	if err != nil {
		return nil, fmt.Errorf("grant of refresh token: %w", err)
	}
	if err := s.usableGrant(ctx, g); err != nil {
		return nil, err
	}
	kept, err := access.ParseSet(old.Scopes)
	if err != nil {
		return nil, fmt.Errorf("stored scopes of grant %s: %w", g.ID, err)
	}
	scopes := kept
	if form.Has("scope") {
		asked, err := access.ParseSet(form.Get("scope"))
		if err != nil {
			return nil, errf("invalid_scope", "%v", err)
		}
		// RFC 6749 §6: "MUST NOT include any scope not originally granted".
		if len(asked) == 0 || !kept.CoversAll(asked) {
			return nil, errf("invalid_scope", "scope asks for more than was granted")
		}
		scopes = asked.Intersect(kept)
	}
	// Only a request that will succeed uses the token up; the rotation is
	// atomic, so of two concurrent uses one sees the token already rotated.
	prev, err := s.store.RotateToken(ctx, old.Hash)
	if err != nil {
		return nil, err
	}
	if prev.Rotated {
		if err := s.store.RevokeGrant(ctx, old.GrantID); err != nil {
			return nil, err
		}
		s.forgetAllBearers()
		s.logger(ctx).WarnContext(ctx, "refresh token reused; grant revoked", "client_id", c.ID, "grant", old.GrantID)
		return nil, errf("invalid_grant", "refresh token already used")
	}
	return s.issue(ctx, c, g, scopes, kept, "")
}

// clientCredentialsGrant is RFC 6749 §4.4 as SMART Backend Services uses
// it: confidential clients only, system/ scopes only, no refresh token.
type clientCredentialsGrant struct{ s *Server }

func (h clientCredentialsGrant) grant(ctx context.Context, c *Client, method authMethod, form url.Values) (*tokenResponse, error) {
	s := h.s
	if method == authPublic || c.Type == Public {
		return nil, errf("unauthorized_client", "client_credentials needs a confidential client")
	}
	asked, err := access.ParseSet(form.Get("scope"))
	if err != nil {
		return nil, errf("invalid_scope", "%v", err)
	}
	if len(asked) == 0 {
		return nil, errf("invalid_scope", "scope is required")
	}
	for _, sc := range asked {
		if sc.Kind != access.Clinical || sc.Context != access.System {
			return nil, errf("invalid_scope", "only system/ scopes may be asked with client_credentials, not %q", sc.String())
		}
		if s.cfg.RefuseWildcardScopes && sc.IsWildcard() {
			return nil, errf("invalid_scope", "wildcard scopes are refused: %q", sc.String())
		}
	}
	allowed, err := access.ParseSet(c.Scopes)
	if err != nil {
		return nil, fmt.Errorf("stored scopes of client %s: %w", c.ID, err)
	}
	granted := asked.Intersect(allowed)
	if len(granted) == 0 {
		return nil, errf("invalid_scope", "none of the scopes asked for may be granted to this client")
	}
	id, err := s.newID()
	if err != nil {
		return nil, err
	}
	g := &Grant{ID: id, ClientID: c.ID, Scopes: granted.String(), Created: s.now()}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		return nil, fmt.Errorf("storing grant: %w", err)
	}
	return s.issue(ctx, c, g, granted, nil, "")
}

// issue makes the tokens of a grant and the response that carries them:
// an access token for scopes and, when refreshScopes (the scope the grant's
// refresh token carries; nil for none) hold offline_access or
// online_access, a refresh token for refreshScopes.
func (s *Server) issue(ctx context.Context, c *Client, g *Grant, scopes, refreshScopes access.Set, nonce string) (*tokenResponse, error) {
	now := s.now()
	lifetime := s.cfg.AccessTokenLifetime
	if g.Username == "" {
		lifetime = s.cfg.BackendTokenLifetime
	}
	at, err := s.newSecret()
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateToken(ctx, &Token{Hash: hash(at), Kind: AccessToken, GrantID: g.ID, ClientID: c.ID,
		Scopes: scopes.String(), Issued: now, Expires: now.Add(lifetime)}); err != nil {
		return nil, fmt.Errorf("storing access token: %w", err)
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(lifetime / time.Second), Scope: scopes.String()}
	if g.Username != "" && (refreshScopes.Has("offline_access") || refreshScopes.Has("online_access")) {
		rt, err := s.newSecret()
		if err != nil {
			return nil, err
		}
		if err := s.store.CreateToken(ctx, &Token{Hash: hash(rt), Kind: RefreshToken, GrantID: g.ID, ClientID: c.ID,
			Scopes: refreshScopes.String(), Issued: now, Expires: now.Add(s.cfg.RefreshTokenLifetime)}); err != nil {
			return nil, fmt.Errorf("storing refresh token: %w", err)
		}
		resp.RefreshToken = rt
	}
	ehr := scopes.Has("launch")
	if g.Patient != "" && (ehr || scopes.Has("launch/patient")) {
		resp.Patient = g.Patient
		// The EHR shows its own banner around an EHR launch; a standalone
		// app must show one (SMART App Launch 2.2 §"need_patient_banner").
		banner := !ehr
		resp.NeedPatientBanner = &banner
		resp.SMARTStyleURL = s.cfg.Issuer + "/oauth/style"
	}
	if g.Encounter != "" && (ehr || scopes.Has("launch/encounter")) {
		resp.Encounter = g.Encounter
		resp.FHIRContext = []map[string]any{{"reference": "Encounter/" + g.Encounter}}
	}
	if g.Username != "" && scopes.Has("openid") {
		claims := map[string]any{
			"iss": s.cfg.Issuer,
			"sub": g.Username,
			"aud": c.ID,
			"iat": now.Unix(),
			"exp": now.Add(idTokenLifetime).Unix(),
		}
		if nonce != "" {
			claims["nonce"] = nonce
		}
		if scopes.Has("fhirUser") && g.FHIRUser != "" {
			claims["fhirUser"] = s.cfg.FHIRBase + "/" + g.FHIRUser
		}
		if scopes.Has("profile") {
			claims["preferred_username"] = g.Username
		}
		idt, err := s.signIDToken(ctx, claims)
		if err != nil {
			return nil, err
		}
		resp.IDToken = idt
	}
	return resp, nil
}

// subject is the sub of a grant: the user, or the client itself.
func subject(g *Grant) string {
	if g.Username != "" {
		return g.Username
	}
	return g.ClientID
}

// bearerToken reads an RFC 6750 §2.1 Authorization header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// usableGrant refuses, as invalid_grant, a grant that was revoked or whose
// patient opted out (a grant made in a race with the opt-out).
func (s *Server) usableGrant(ctx context.Context, g *Grant) error {
	if g.Revoked {
		return errf("invalid_grant", "the grant was revoked")
	}
	out, err := s.grantOptedOut(ctx, g)
	if err != nil {
		return err
	}
	if out {
		return errf("invalid_grant", "the patient has opted out of access by third-party apps")
	}
	return nil
}
