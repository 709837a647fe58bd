package smart

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"smartfhir/internal/access"
	"smartfhir/internal/reqctx"
)

// Config configures a Server. Zero durations take the defaults documented
// on each field.
type Config struct {
	// Issuer is the public base URL, e.g. https://ehr.example.org; it is the
	// OpenID issuer and the root of the /oauth endpoints.
	Issuer string
	// FHIRBase is the FHIR base URL tokens are for (the required "aud" of
	// SMART App Launch 2.2 §"authorize"); default Issuer + "/fhir".
	FHIRBase string
	// ManagementURL is where users manage the apps they authorized
	// (management_endpoint); default Issuer + "/portal".
	ManagementURL string
	Store         Store
	// Encounters lists a patient's encounters for the encounter picker of
	// a standalone launch; nil turns that picker (and the
	// context-standalone-encounter capability) off.
	Encounters EncounterFinder
	// Panels finds the patients assigned to a practitioner in the clinical
	// data (CareTeam membership, general practitioner), beyond the
	// user's explicit list; nil means the explicit list alone.
	Panels PanelFinder
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of every token, secret, salt and key; default
	// crypto/rand.
	Rand io.Reader
	// HTTPClient fetches client JWKS URLs; default a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger

	// AccessTokenLifetime defaults to 1 hour.
	AccessTokenLifetime time.Duration
	// BackendTokenLifetime is the client_credentials token lifetime;
	// default 5 minutes (SMART Backend Services §"Response").
	BackendTokenLifetime time.Duration
	// RefreshTokenLifetime defaults to 90 days.
	RefreshTokenLifetime time.Duration
	// CodeLifetime defaults to 60 s; longer is refused (RFC 6749 §4.1.2
	// recommends at most 10 minutes, the issue 60 s).
	CodeLifetime time.Duration
	// BearerCacheTTL is how long a checked bearer token is remembered;
	// default 5 s. Revocation elsewhere takes effect within this window.
	BearerCacheTTL time.Duration
	// RefuseWildcardScopes makes requests for "*" resource types fail with
	// invalid_scope.
	RefuseWildcardScopes bool
	// LoginMaxFailures failed logins within LoginLockout lock the user name
	// for LoginLockout; defaults 5 and 15 minutes.
	LoginMaxFailures int
	LoginLockout     time.Duration
	// LoginMaxAddressFailures failed logins from one source address (an
	// IPv4 address or an IPv6 /64) within LoginLockout lock that address
	// for LoginLockout; default 20, negative turns the limit off (for a
	// server behind a proxy that hides client addresses).
	LoginMaxAddressFailures int
}

// Server is the authorization server. Create it with New.
type Server struct {
	cfg      Config
	store    Store
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	tokenURL string
	secure   bool

	grants map[string]grantHandler

	keys   keyRing
	jwks   jwksCache
	bearer bearerCache
}

// New checks cfg and returns a Server. It does no I/O: signing keys are
// loaded, or made, on first use.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("smart.New: no Store")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("smart.New: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if cfg.FHIRBase == "" {
		cfg.FHIRBase = cfg.Issuer + "/fhir"
	}
	cfg.FHIRBase = strings.TrimSuffix(cfg.FHIRBase, "/")
	if cfg.ManagementURL == "" {
		cfg.ManagementURL = cfg.Issuer + "/portal"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = cryptoRand{}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AccessTokenLifetime, time.Hour)
	def(&cfg.BackendTokenLifetime, 5*time.Minute)
	def(&cfg.RefreshTokenLifetime, 90*24*time.Hour)
	def(&cfg.CodeLifetime, 60*time.Second)
	def(&cfg.BearerCacheTTL, 5*time.Second)
	def(&cfg.LoginLockout, 15*time.Minute)
	if cfg.CodeLifetime > 60*time.Second {
		return nil, fmt.Errorf("smart.New: code lifetime %v is over 60 s", cfg.CodeLifetime)
	}
	if cfg.LoginMaxFailures <= 0 {
		cfg.LoginMaxFailures = 5
	}
	if cfg.LoginMaxAddressFailures == 0 {
		cfg.LoginMaxAddressFailures = 20
	}
	s := &Server{
		cfg:      cfg,
		store:    cfg.Store,
		now:      cfg.Now,
		rand:     cfg.Rand,
		log:      cfg.Logger,
		tokenURL: cfg.Issuer + "/oauth/token",
		secure:   u.Scheme == "https",
	}
	s.grants = map[string]grantHandler{
		"authorization_code": authorizationCodeGrant{s},
		"refresh_token":      refreshTokenGrant{s},
		"client_credentials": clientCredentialsGrant{s},
	}
	s.bearer.entries = map[[32]byte]bearerEntry{}
	s.jwks.entries = map[string]*jwksEntry{}
	return s, nil
}

// Register adds the server's routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleOpenIDConfiguration)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", cors(s.handleSMARTConfiguration))
	mux.HandleFunc("OPTIONS /fhir/.well-known/smart-configuration", cors(nil))
	mux.HandleFunc("GET /oauth/jwks", s.handleJWKS)
	mux.HandleFunc("GET /oauth/style", cors(s.handleStyle))
	mux.HandleFunc("POST /oauth/token", cors(s.handleToken))
	mux.HandleFunc("OPTIONS /oauth/token", cors(nil))
	mux.HandleFunc("POST /oauth/introspect", s.handleIntrospect)
	mux.HandleFunc("POST /oauth/revoke", cors(s.handleRevoke))
	mux.HandleFunc("OPTIONS /oauth/revoke", cors(nil))
	mux.HandleFunc("GET /oauth/userinfo", cors(s.handleUserinfo))
	mux.HandleFunc("POST /oauth/userinfo", cors(s.handleUserinfo))
	mux.HandleFunc("OPTIONS /oauth/userinfo", cors(nil))
	mux.HandleFunc("GET /oauth/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth/authorize", s.handleAuthorize)
	mux.HandleFunc("GET /login", s.handleLoginPage)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.HandleFunc("GET /consent", s.handleConsentPage)
	mux.HandleFunc("POST /consent", s.handleConsent)
}

// cors lets browser apps call an endpoint from any origin (SMART App Launch
// 2.2 §"Considerations for Cross-Origin Resource Sharing"). These endpoints
// take no cookies, so a wildcard origin discloses nothing. A nil h answers
// preflight requests.
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

// hash is the SHA-256 under which tokens, codes, launches and sessions are
// stored (STYLE 9: never store what can be re-derived).
func hash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// newSecret returns a 256-bit random value, base64url without padding.
func (s *Server) newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newID returns a 128-bit random identifier.
func (s *Server) newID() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// oauthError is an error response of RFC 6749 §5.2 (or §4.1.2.1 when
// redirected).
type oauthError struct {
	Code        string
	Description string
	// basicAuth asks for a WWW-Authenticate challenge on invalid_client.
	basicAuth bool
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func errf(code, format string, args ...any) *oauthError {
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with the no-store headers RFC 6749 §5.1 requires of
// token responses; every authorization-server JSON answer carries them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err as RFC 6749 §5.2 says: invalid_client is 401,
// every other error 400; anything that is not an *oauthError is logged and
// answered as a generic server_error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		s.logger(r.Context()).ErrorContext(r.Context(), "authorization server", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": "internal error"})
		return
	}
	status := http.StatusBadRequest
	if oe.Code == "invalid_client" {
		status = http.StatusUnauthorized
		if oe.basicAuth {
			w.Header().Set("WWW-Authenticate", `Basic realm="smartfhir"`)
		}
	}
	body := map[string]string{"error": oe.Code}
	if oe.Description != "" {
		body["error_description"] = oe.Description
	}
	writeJSON(w, status, body)
}

// parseForm reads an application/x-www-form-urlencoded body, refusing
// repeated parameters (RFC 6749 §3.1, §3.2: "parameters MUST NOT be
// included more than once").
func parseForm(r *http.Request, allowQuery bool) (url.Values, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if r.Method == http.MethodPost {
		ct := r.Header.Get("Content-Type")
		if !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
			return nil, errf("invalid_request", "the body must be application/x-www-form-urlencoded")
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, errf("invalid_request", "unreadable form")
	}
	form := r.PostForm
	if allowQuery && r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	for k, v := range form {
		if len(v) > 1 && k != "scope" && k != "patient" {
			return nil, errf("invalid_request", "parameter %q is repeated", k)
		}
	}
	return form, nil
}

// bearerCache remembers checked access tokens for a few seconds, so that
// the FHIR API does not read the database on every request (DESIGN.md §6).
type bearerCache struct {
	mu      sync.Mutex
	entries map[[32]byte]bearerEntry
}

type bearerEntry struct {
	info  *AccessInfo
	until time.Time
}

const bearerCacheMax = 50000

// AccessInfo is what a valid access token lets its bearer do.
type AccessInfo struct {
	ClientID string
	// Username is empty for a client_credentials token.
	Username string
	Role     Role
	// FHIRUser is the user's relative reference (Patient/85), if any.
	FHIRUser string
	// UserPatients are the patients a related person or practitioner may
	// see, from the user's record.
	UserPatients []string
	Scopes       access.Set
	Patient      string
	Encounter    string
	GrantID      string
	Expires      time.Time
	// Policy is what the token allows on the FHIR API, compiled once
	// when the token is checked (and cached with it).
	Policy *access.Policy
}

// ErrInvalidToken is returned by Authenticate for any bearer token that is
// not an active access token (RFC 6750 §3.1 invalid_token).
var ErrInvalidToken = errors.New("invalid token")

// Authenticate checks a bearer token from the FHIR API (RFC 6750 §2.1) and
// says what it allows. Answers are cached for BearerCacheTTL, bounded by the
// token's expiry. Invalid tokens answer ErrInvalidToken.
func (s *Server) Authenticate(ctx context.Context, bearer string) (*AccessInfo, error) {
	if bearer == "" || len(bearer) > 512 {
		return nil, ErrInvalidToken
	}
	key := sha256.Sum256([]byte(bearer))
	now := s.now()
	s.bearer.mu.Lock()
	e, ok := s.bearer.entries[key]
	s.bearer.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.info, nil
	}
	info, err := s.checkAccessToken(ctx, key[:], now)
	if err != nil {
		return nil, err
	}
	until := now.Add(s.cfg.BearerCacheTTL)
	if info.Expires.Before(until) {
		until = info.Expires
	}
	s.bearer.mu.Lock()
	if len(s.bearer.entries) >= bearerCacheMax {
		clear(s.bearer.entries)
	}
	s.bearer.entries[key] = bearerEntry{info, until}
	s.bearer.mu.Unlock()
	return info, nil
}

func (s *Server) forgetBearer(tokenHash []byte) {
	var key [32]byte
	copy(key[:], tokenHash)
	s.bearer.mu.Lock()
	delete(s.bearer.entries, key)
	s.bearer.mu.Unlock()
}

// forgetAllBearers empties this replica's bearer cache, after a change
// that ends many tokens at once (a grant or a client). Other replicas
// notice within BearerCacheTTL.
func (s *Server) forgetAllBearers() {
	s.bearer.mu.Lock()
	clear(s.bearer.entries)
	s.bearer.mu.Unlock()
}

// logger is the request's logger (carrying its request id) when ctx is a
// request's, else the server's.
func (s *Server) logger(ctx context.Context) *slog.Logger {
	if reqctx.RequestID(ctx) != "" {
		return reqctx.Logger(ctx)
	}
	return s.log
}

func (s *Server) checkAccessToken(ctx context.Context, h []byte, now time.Time) (*AccessInfo, error) {
	tok, g, c, err := s.activeToken(ctx, h, now)
	if err != nil {
		return nil, err
	}
	if tok.Kind != AccessToken {
		return nil, ErrInvalidToken
	}
	scopes, err := access.ParseSet(tok.Scopes)
	if err != nil {
		return nil, fmt.Errorf("stored scopes of grant %s: %w", g.ID, err)
	}
	info := &AccessInfo{
		ClientID:  c.ID,
		Username:  g.Username,
		FHIRUser:  g.FHIRUser,
		Scopes:    scopes,
		Patient:   g.Patient,
		Encounter: g.Encounter,
		GrantID:   g.ID,
		Expires:   tok.Expires,
	}
	if g.Username != "" {
		u, err := s.store.User(ctx, g.Username)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrInvalidToken
		}
		if err != nil {
			return nil, err
		}
		info.Role = u.Role
		if info.UserPatients, err = s.userPatients(ctx, u); err != nil {
			return nil, err
		}
	}
	// A patient who opted out ends the tokens of their launches and of
	// their own logins (OptOut revokes those grants; this also covers a
	// grant made in a race with it), and drops out of everyone else's
	// user/ scopes.
	own := grantPatients(g)
	out, err := s.optedOut(ctx, append(slices.Clip(own), info.UserPatients...))
	if err != nil {
		return nil, err
	}
	for _, p := range own {
		if slices.Contains(out, p) {
			return nil, ErrInvalidToken
		}
	}
	info.UserPatients = slices.DeleteFunc(info.UserPatients, func(p string) bool { return slices.Contains(out, p) })
	info.Policy = access.NewPolicy(access.Grant{Scopes: scopes, Patient: g.Patient, UserPatients: info.UserPatients,
		Who: access.Principal{ClientID: c.ID, Username: g.Username, FHIRUser: g.FHIRUser, Admin: info.Role == RoleAdmin}})
	return info, nil
}

// userPatients are the patients a user's user/ scopes reach: a patient's
// own record and those on their list (whom a related person acts for), a
// practitioner's list and panel (Config.Panels). Other roles reach none.
func (s *Server) userPatients(ctx context.Context, u *User) ([]string, error) {
	var out []string
	switch u.Role {
	case RolePatient, RoleRelatedPerson:
		out = slices.Clone(u.Patients)
		if own, ok := strings.CutPrefix(u.FHIRUser, "Patient/"); ok && u.Role == RolePatient {
			out = append(out, own)
		}
	case RolePractitioner:
		out = slices.Clone(u.Patients)
		if s.cfg.Panels != nil && strings.HasPrefix(u.FHIRUser, "Practitioner/") {
			panel, err := s.cfg.Panels.Panel(ctx, u.FHIRUser)
			if err != nil {
				return nil, fmt.Errorf("panel of %s: %w", u.FHIRUser, err)
			}
			out = append(out, panel...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// grantPatients are the patients a grant is for: its launch patient, and
// its user when the user is a patient (fhirUser Patient/{id}), the grants
// Store.OptOut revokes.
func grantPatients(g *Grant) []string {
	var out []string
	if g.Patient != "" {
		out = append(out, g.Patient)
	}
	if own, ok := strings.CutPrefix(g.FHIRUser, "Patient/"); ok {
		out = append(out, own)
	}
	return out
}

// grantOptedOut reports whether a patient the grant is for opted out. The
// token endpoint and introspection ask it so that a grant made in a race
// with an opt-out (after the consent step checked, before OptOut revoked)
// issues, refreshes and vouches for no token.
func (s *Server) grantOptedOut(ctx context.Context, g *Grant) (bool, error) {
	out, err := s.optedOut(ctx, grantPatients(g))
	return len(out) > 0, err
}

// optedOut returns those of patients who opted out of third-party access.
func (s *Server) optedOut(ctx context.Context, patients []string) ([]string, error) {
	if len(patients) == 0 {
		return nil, nil
	}
	return s.store.OptedOut(ctx, patients)
}

// PanelFinder finds the patients assigned to a practitioner in the
// clinical data.
type PanelFinder interface {
	// Panel returns the ids of the patients of practitioner
	// ("Practitioner/{id}").
	Panel(ctx context.Context, practitioner string) ([]string, error)
}

// OptOut records that a patient opted out of access by third-party apps
// and ends every grant made for them or by them at once; on other
// replicas the tokens stop within BearerCacheTTL. While opted out, no app
// is authorized for the patient and other users' user/ scopes do not
// reach them. Backend Services (system/) tokens are not affected.
func (s *Server) OptOut(ctx context.Context, patientID string) error {
	if err := s.store.OptOut(ctx, patientID, s.now()); err != nil {
		return err
	}
	s.forgetAllBearers()
	return nil
}

// OptIn withdraws a patient's opt-out: apps may be authorized again. No
// grant ended by the opt-out comes back.
func (s *Server) OptIn(ctx context.Context, patientID string) error {
	if err := s.store.OptIn(ctx, patientID); err != nil {
		return err
	}
	s.forgetAllBearers()
	return nil
}

// OptOuts lists the patients who opted out.
func (s *Server) OptOuts(ctx context.Context) ([]OptOutRecord, error) {
	return s.store.OptOuts(ctx)
}

// activeToken finds a token by hash and checks everything that can end it:
// expiry, revocation, rotation, its grant and its client's status.
func (s *Server) activeToken(ctx context.Context, h []byte, now time.Time) (*Token, *Grant, *Client, error) {
	tok, err := s.store.Token(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if tok.Revoked || tok.Rotated || !now.Before(tok.Expires) {
		return nil, nil, nil, ErrInvalidToken
	}
	g, err := s.store.Grant(ctx, tok.GrantID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if g.Revoked {
		return nil, nil, nil, ErrInvalidToken
	}
	c, err := s.store.Client(ctx, tok.ClientID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Status != Approved {
		return nil, nil, nil, ErrInvalidToken
	}
	return tok, g, c, nil
}
