package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"smartfhir/internal/access"
	"smartfhir/internal/web"
)

const sessionCookie = "smartfhir_session"

// sessionLifetime bounds how long a browser stays signed in to the
// authorization server (and so how long SSO across apps lasts).
const sessionLifetime = time.Hour

// session is what the server remembers of a browser, stored as JSON in
// Session.Data under the hash of the cookie value.
type session struct {
	CSRF     string       `json:"csrf"`
	Username string       `json:"username,omitempty"`
	Req      *authRequest `json:"req,omitempty"`

	cookie string
}

// authRequest is a validated authorization request waiting for login and
// consent.
type authRequest struct {
	ClientID      string `json:"client_id"`
	RedirectURI   string `json:"redirect_uri"`
	State         string `json:"state"`
	Scope         string `json:"scope"`
	CodeChallenge string `json:"code_challenge"`
	Nonce         string `json:"nonce,omitempty"`
	// The EHR launch context the launch parameter resolved to.
	LaunchUser      string `json:"launch_user,omitempty"`
	LaunchPatient   string `json:"launch_patient,omitempty"`
	LaunchEncounter string `json:"launch_encounter,omitempty"`
	EHRLaunch       bool   `json:"ehr_launch,omitempty"`
}

func (s *Server) loadSession(ctx context.Context, r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil
	}
	st, err := s.store.Session(ctx, hash(c.Value))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.now().Before(st.Expires) {
		return nil, nil
	}
	var sess session
	if err := json.Unmarshal(st.Data, &sess); err != nil {
		return nil, fmt.Errorf("session data: %w", err)
	}
	sess.cookie = c.Value
	return &sess, nil
}

// saveSession stores sess; with fresh it first moves it to a new cookie
// value (and a new CSRF token), as after a login, so that a session id
// planted before login is worth nothing after it (session fixation).
func (s *Server) saveSession(ctx context.Context, w http.ResponseWriter, sess *session, fresh bool) error {
	if fresh || sess.cookie == "" {
		if sess.cookie != "" {
			if err := s.store.DeleteSession(ctx, hash(sess.cookie)); err != nil {
				return err
			}
		}
		v, err := s.newSecret()
		if err != nil {
			return err
		}
		csrf, err := s.newSecret()
		if err != nil {
			return err
		}
		sess.cookie, sess.CSRF = v, csrf
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	exp := s.now().Add(sessionLifetime)
	if err := s.store.PutSession(ctx, &Session{Hash: hash(sess.cookie), Data: data, Expires: exp}); err != nil {
		return fmt.Errorf("storing session: %w", err)
	}
	web.SetCookie(w, sessionCookie, sess.cookie, exp, s.secure)
	return nil
}

// errorPage answers a request that cannot be sent back to the app: an
// unknown client or redirect URI must never be redirected to (RFC 6749
// §4.1.2.1, §10.15).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	if err := web.Render(w, status, "error", map[string]string{"Title": title, "Message": msg}); err != nil {
		s.logger(r.Context()).ErrorContext(r.Context(), "rendering error page", "err", err)
	}
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.logger(r.Context()).ErrorContext(r.Context(), "authorization flow", "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The server could not complete the request.")
}

// redirectError sends an error back to the app (RFC 6749 §4.1.2.1).
func redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	q := url.Values{"error": {code}}
	if desc != "" {
		q.Set("error_description", desc)
	}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, withQuery(redirectURI, q), http.StatusFound)
}

func withQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}

// redirectAllowed compares a redirect URI with the registered ones:
// exactly (OAuth 2.0 Security BCP §4.1.3), except that a registered
// loopback URI matches any port (RFC 8252 §7.3).
func redirectAllowed(registered []string, got string) bool {
	if slices.Contains(registered, got) {
		return true
	}
	g, err := url.Parse(got)
	if err != nil || g.Scheme != "http" || !isLoopback(g.Hostname()) {
		return false
	}
	for _, reg := range registered {
		r, err := url.Parse(reg)
		if err != nil || r.Scheme != "http" || !isLoopback(r.Hostname()) {
			continue
		}
		if r.Hostname() == g.Hostname() && r.EscapedPath() == g.EscapedPath() && r.RawQuery == g.RawQuery && g.Fragment == "" && g.User == nil {
			return true
		}
	}
	return false
}

// isLoopback accepts the IP literals RFC 8252 §8.3 recommends, not
// "localhost".
func isLoopback(host string) bool { return host == "127.0.0.1" || host == "::1" }

// handleAuthorize is the authorization endpoint (RFC 6749 §4.1.1, SMART
// App Launch 2.2 §"Obtain authorization code"), by GET or form POST
// (capability authorize-post).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, err := parseForm(r, true)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The authorization request is malformed.")
		return
	}
	for k, v := range form {
		if len(v) > 1 {
			s.errorPage(w, r, http.StatusBadRequest, "Bad request", fmt.Sprintf("Parameter %q is repeated.", k))
			return
		}
	}
	c, err := s.store.Client(ctx, form.Get("client_id"))
	if errors.Is(err, ErrNotFound) || form.Get("client_id") == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown app", "The app that sent you here is not registered.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	redirectURI := form.Get("redirect_uri")
	if redirectURI == "" || !redirectAllowed(c.RedirectURIs, redirectURI) {
		s.errorPage(w, r, http.StatusBadRequest, "Unregistered redirect", "The app asked to return to an address it did not register.")
		return
	}
	// From here on, errors go back to the app.
	state := form.Get("state")
	fail := func(code, desc string) { redirectError(w, r, redirectURI, state, code, desc) }
	if c.Status != Approved {
		fail("unauthorized_client", "the app is not approved")
		return
	}
	// SMART App Launch 2.2 §"Obtain authorization code": state is
	// required, as the app's defence against CSRF (RFC 6749 §10.12).
	if state == "" {
		fail("invalid_request", "state is required")
		return
	}
	if form.Get("response_type") != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	if strings.TrimSuffix(form.Get("aud"), "/") != s.cfg.FHIRBase {
		fail("invalid_request", "aud must be the FHIR base URL "+s.cfg.FHIRBase)
		return
	}
	challenge := form.Get("code_challenge")
	if form.Get("code_challenge_method") != "S256" || len(challenge) != 43 {
		fail("invalid_request", "PKCE with code_challenge_method S256 is required")
		return
	}
	asked, err := access.ParseSet(form.Get("scope"))
	if err != nil {
		fail("invalid_scope", err.Error())
		return
	}
	if len(asked) == 0 {
		fail("invalid_scope", "scope is required")
		return
	}
	if s.cfg.RefuseWildcardScopes {
		for _, sc := range asked {
			if sc.IsWildcard() {
				fail("invalid_scope", "wildcard scopes are refused")
				return
			}
		}
	}
	req := &authRequest{ClientID: c.ID, RedirectURI: redirectURI, State: state, Scope: asked.String(), CodeChallenge: challenge, Nonce: form.Get("nonce")}
	if lv := form.Get("launch"); lv != "" {
		// A launch is single-use: taking it here means a launch URL seen
		// in a log or a browser history cannot start a second session.
		l, err := s.store.TakeLaunch(ctx, hash(lv))
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.internalError(w, r, err)
			return
		}
		if err != nil || l.ClientID != c.ID || !s.now().Before(l.Expires) {
			fail("invalid_request", "unknown or expired launch")
			return
		}
		req.EHRLaunch, req.LaunchUser, req.LaunchPatient, req.LaunchEncounter = true, l.Username, l.Patient, l.Encounter
	}
	sess, err := s.loadSession(ctx, r)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if sess == nil {
		sess = &session{}
	}
	sess.Req = req
	if req.EHRLaunch && sess.Username != req.LaunchUser {
		sess.Username = ""
	}
	if err := s.saveSession(ctx, w, sess, false); err != nil {
		s.internalError(w, r, err)
		return
	}
	next := "/login"
	if sess.Username != "" {
		next = "/consent"
	}
	http.Redirect(w, r, next, http.StatusFound)
}

// pendingSession loads the session of a browser in the middle of an
// authorization, or answers an error page.
func (s *Server) pendingSession(w http.ResponseWriter, r *http.Request) (*session, *Client, bool) {
	sess, err := s.loadSession(r.Context(), r)
	if err != nil {
		s.internalError(w, r, err)
		return nil, nil, false
	}
	if sess == nil || sess.Req == nil {
		s.errorPage(w, r, http.StatusBadRequest, "No authorization in progress", "Start again from the app.")
		return nil, nil, false
	}
	c, err := s.store.Client(r.Context(), sess.Req.ClientID)
	if err != nil {
		s.internalError(w, r, err)
		return nil, nil, false
	}
	return sess, c, true
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	sess, c, ok := s.pendingSession(w, r)
	if !ok {
		return
	}
	s.renderLogin(w, r, sess, c, http.StatusOK, "", "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, sess *session, c *Client, status int, username, msg string) {
	if err := web.Render(w, status, "login", map[string]string{"ClientName": c.Name, "CSRF": sess.CSRF, "Username": username, "Error": msg}); err != nil {
		s.logger(r.Context()).ErrorContext(r.Context(), "rendering login", "err", err)
	}
}

// checkForm checks the CSRF token of a posted form.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request, sess *session) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return nil, false
	}
	if !web.CheckCSRF(sess.CSRF, r.PostForm.Get(web.CSRFField)) {
		s.errorPage(w, r, http.StatusForbidden, "Form expired", "The form was not sent from this site, or it expired. Start again from the app.")
		return nil, false
	}
	return r.PostForm, true
}

// handleLogin checks a user name and password, with lockout after
// repeated failures per user name and per source address (RFC 6749 §10.10:
// prevent attackers from guessing "resource owner passwords"; NIST SP
// 800-63B §5.2.2 "Rate Limiting (Throttling)").
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, c, ok := s.pendingSession(w, r)
	if !ok {
		return
	}
	form, ok := s.checkForm(w, r, sess)
	if !ok {
		return
	}
	username, password := form.Get("username"), form.Get("password")
	ok, err := s.checkLogin(ctx, username, password, sourceAddress(r))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	if !ok {
		s.renderLogin(w, r, sess, c, http.StatusUnauthorized, username, "Wrong user name or password, or too many attempts: try again later.")
		return
	}
	if sess.Req.EHRLaunch && username != sess.Req.LaunchUser {
		s.renderLogin(w, r, sess, c, http.StatusForbidden, username, "This launch was prepared for another user.")
		return
	}
	sess.Username = username
	if err := s.saveSession(ctx, w, sess, true); err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/consent", http.StatusSeeOther)
}

// sourceAddress is the key of the per-address login limit: the peer's IP
// address, or its /64 for IPv6, since one host commonly holds a whole /64.
// It is the TCP peer, never a forwarded header a client could forge.
func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// checkLogin verifies a password. Failures count against the user name
// (known or not, so that lockout does not reveal which names exist) and
// against the source address. A locked name or address is refused without
// a password check and without counting, so an attacker who is locked out
// cannot go on locking out others.
func (s *Server) checkLogin(ctx context.Context, username, password, addr string) (bool, error) {
	if username == "" || len(username) > 200 || len(password) > 1000 {
		return false, nil
	}
	now := s.now()
	userKey, addrKey := "user:"+username, "addr:"+addr
	keys := []string{userKey}
	if s.cfg.LoginMaxAddressFailures > 0 {
		keys = append(keys, addrKey)
	}
	for _, k := range keys {
		st, err := s.store.LoginState(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if now.Before(st.LockedUntil) {
			return false, nil
		}
	}
	u, err := s.store.User(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	stored := dummyHash
	if u != nil {
		stored = u.PasswordHash
	}
	if checkPassword(stored, password) && u != nil {
		return true, s.store.ClearLoginFailures(ctx, userKey)
	}
	log := s.logger(ctx)
	if s.cfg.LoginMaxAddressFailures > 0 {
		st, err := s.store.RecordLoginFailure(ctx, addrKey, now, s.cfg.LoginLockout, s.cfg.LoginMaxAddressFailures, s.cfg.LoginLockout)
		if err != nil {
			return false, err
		}
		if st.Failures == s.cfg.LoginMaxAddressFailures {
			log.WarnContext(ctx, "logins from an address locked after repeated failures", "addr", addr)
		}
	}
	st, err := s.store.RecordLoginFailure(ctx, userKey, now, s.cfg.LoginLockout, s.cfg.LoginMaxFailures, s.cfg.LoginLockout)
	if err != nil {
		return false, err
	}
	if st.Failures == s.cfg.LoginMaxFailures {
		log.WarnContext(ctx, "login locked after repeated failures", "username", username)
	}
	return false, nil
}

// scopeChoice is one checkbox of the consent page.
type scopeChoice struct {
	Value   string
	Text    string
	Checked bool
	Subs    []scopeChoice
}

// categories are the sub-scopes a user may grant instead of a whole
// Condition or Observation scope (US Core category value sets).
var categories = map[string][][2]string{
	"Condition": {
		{"http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis", "encounter diagnoses"},
		{"http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item", "problem list"},
		{"http://hl7.org/fhir/us/core/CodeSystem/condition-category|health-concern", "health concerns"},
	},
	"Observation": {
		{"http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "laboratory results"},
		{"http://terminology.hl7.org/CodeSystem/observation-category|vital-signs", "vital signs"},
		{"http://terminology.hl7.org/CodeSystem/observation-category|social-history", "social history"},
		{"http://terminology.hl7.org/CodeSystem/observation-category|survey", "surveys"},
		{"http://hl7.org/fhir/us/core/CodeSystem/us-core-category|sdoh", "social determinants of health"},
		{"http://hl7.org/fhir/us/core/CodeSystem/us-core-category|clinical-test", "clinical tests"},
	},
}

// offer works out what the consent page offers: requested ∩ allowed for
// the client ∩ what the user may have, and the patients to pick from.
func (s *Server) offer(ctx context.Context, c *Client, u *User, req *authRequest) (access.Set, []string, error) {
	asked, err := access.ParseSet(req.Scope)
	if err != nil {
		return nil, nil, err
	}
	allowed, err := access.ParseSet(c.Scopes)
	if err != nil {
		return nil, nil, fmt.Errorf("stored scopes of client %s: %w", c.ID, err)
	}
	patients := userPatients(u)
	if req.EHRLaunch {
		patients = nil
	}
	if len(patients) > 1 {
		// The picker leaves out patients who opted out of third-party
		// apps. A single patient stays, so that the user learns why
		// authorization is refused rather than meeting an empty page.
		out, err := s.optedOut(ctx, patients)
		if err != nil {
			return nil, nil, err
		}
		patients = slices.DeleteFunc(slices.Clone(patients), func(p string) bool { return slices.Contains(out, p) })
	}
	set := asked.Intersect(allowed).Filter(func(sc access.Scope) bool {
		switch {
		case sc.Kind == access.Clinical:
			return sc.Context != access.System
		case sc.Word == "launch":
			return req.EHRLaunch
		case sc.Word == "launch/patient":
			return req.EHRLaunch && req.LaunchPatient != "" || !req.EHRLaunch && len(patients) > 0
		case sc.Word == "launch/encounter":
			return req.EHRLaunch && req.LaunchEncounter != "" || !req.EHRLaunch && s.cfg.Encounters != nil && len(patients) > 0
		case sc.Word == "fhirUser":
			return u.FHIRUser != ""
		}
		return true
	})
	// A standalone encounter is picked among the selected patient's, so
	// launch/encounter comes only with launch/patient.
	if !req.EHRLaunch && !set.Has("launch/patient") {
		set = withoutWord(set, "launch/encounter")
	}
	if !set.Has("launch/patient") || req.EHRLaunch {
		patients = nil
	}
	return set, patients, nil
}

// withoutWord is set without the scope word (launch/encounter and the like).
func withoutWord(set access.Set, word string) access.Set {
	return set.Filter(func(sc access.Scope) bool { return sc.Kind != access.Other || sc.Word != word })
}

// standaloneEncounter says whether a consent for req with scopes set needs
// the encounter picker: a standalone launch granting launch/encounter.
func standaloneEncounter(req *authRequest, set access.Set) bool {
	return !req.EHRLaunch && set.Has("launch/encounter")
}

// userPatients is whose records a user may open: a patient their own, a
// related person or practitioner those listed for them.
func userPatients(u *User) []string {
	if u.Role == RolePatient {
		if id, ok := strings.CutPrefix(u.FHIRUser, "Patient/"); ok {
			return []string{id}
		}
	}
	return u.Patients
}

// plainTypes names the common resource types in words a patient knows.
var plainTypes = map[string]string{
	"*":                  "all kinds of records",
	"Patient":            "demographics (name, birth date, contact details)",
	"Observation":        "observations (lab results, vital signs and more)",
	"Condition":          "conditions (problems and diagnoses)",
	"AllergyIntolerance": "allergies",
	"MedicationRequest":  "medication prescriptions",
	"Immunization":       "immunizations",
	"Encounter":          "visits",
	"Procedure":          "procedures",
	"DiagnosticReport":   "test reports",
	"DocumentReference":  "documents",
	"CarePlan":           "care plans",
	"Goal":               "health goals",
}

func describe(sc access.Scope) string {
	if sc.Kind == access.Other {
		switch sc.Word {
		case "openid":
			return "Know who you are"
		case "fhirUser":
			return "See your user record (who you are in the health record)"
		case "profile":
			return "See your user name"
		case "launch", "launch/patient":
			return "Know which patient's record is open"
		case "launch/encounter":
			return "Know which visit is open"
		case "offline_access":
			return "Keep access while you are not using the app, until you revoke it"
		case "online_access":
			return "Keep access while you are signed in"
		}
		return "Permission"
	}
	var verbs []string
	for _, p := range []struct {
		p access.Perm
		v string
	}{{access.Create, "create"}, {access.Read, "read"}, {access.Update, "update"}, {access.Delete, "delete"}, {access.Search, "search"}} {
		if sc.Perms&p.p != 0 {
			verbs = append(verbs, p.v)
		}
	}
	what := sc.Type + " records"
	if w, ok := plainTypes[sc.Type]; ok {
		what = w
	}
	whose := map[access.Context]string{access.Patient: "of the selected patient", access.User: "you can see", access.System: "of every patient"}[sc.Context]
	said := verbs[0]
	if n := len(verbs); n > 1 {
		said = strings.Join(verbs[:n-1], ", ") + " and " + verbs[n-1]
	}
	text := strings.ToUpper(said[:1]) + said[1:] + " " + what + " " + whose
	if len(sc.Params) > 0 {
		text += " (only some categories)"
	}
	return text
}

func (s *Server) consentUser(w http.ResponseWriter, r *http.Request) (*session, *Client, *User, bool) {
	sess, c, ok := s.pendingSession(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	if sess.Username == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil, nil, nil, false
	}
	u, err := s.store.User(r.Context(), sess.Username)
	if err != nil {
		s.internalError(w, r, err)
		return nil, nil, nil, false
	}
	return sess, c, u, true
}

func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	sess, c, u, ok := s.consentUser(w, r)
	if !ok {
		return
	}
	set, patients, err := s.offer(r.Context(), c, u, sess.Req)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	v := consentView{Scopes: scopeChoices(set, nil)}
	if len(patients) > 1 {
		v.Patients = patients
	}
	if standaloneEncounter(sess.Req, set) {
		v.AskEncounter = true
		if len(patients) == 1 {
			encs, err := s.cfg.Encounters.PatientEncounters(r.Context(), patients[0], encounterPickerLimit)
			if err != nil {
				s.internalError(w, r, fmt.Errorf("encounters of the patient: %w", err))
				return
			}
			v.Encounters = encounterOptions(encs)
		} else {
			v.EncounterLater = true
		}
	}
	s.renderConsent(w, r, http.StatusOK, sess, c, u, set, v)
}

// consentView is what the consent page shows besides the client and user.
type consentView struct {
	Scopes []scopeChoice
	// Patients are the radio choices of the patient picker (two or more).
	Patients []string
	// Patient is a patient already chosen on an earlier step, carried in
	// a hidden input (and checked again when posted).
	Patient string
	// AskEncounter is set for a standalone launch granting
	// launch/encounter. Encounters are then the picker's choices; empty,
	// they mean the patient has none, unless EncounterLater says that the
	// patient is still to be chosen.
	AskEncounter   bool
	Encounters     []encounterOption
	EncounterLater bool
	Error          string
}

// scopeChoices are the checkboxes for set. With ticked nil, every scope
// starts ticked and every category sub-scope clear; otherwise exactly the
// ticked values are.
func scopeChoices(set access.Set, ticked []string) []scopeChoice {
	checked := func(v string, def bool) bool {
		if ticked == nil {
			return def
		}
		return slices.Contains(ticked, v)
	}
	var choices []scopeChoice
	for _, sc := range set {
		ch := scopeChoice{Value: sc.String(), Text: describe(sc)}
		ch.Checked = checked(ch.Value, true)
		if sc.Kind == access.Clinical && len(sc.Params) == 0 && sc.Perms&access.Read != 0 {
			for _, cat := range categories[sc.Type] {
				sub := sc
				sub.V1 = false
				sub.Params = []access.Param{{Name: "category", Value: cat[0]}}
				ch.Subs = append(ch.Subs, scopeChoice{Value: sub.String(), Text: cat[1], Checked: checked(sub.String(), false)})
			}
		}
		choices = append(choices, ch)
	}
	return choices
}

func (s *Server) renderConsent(w http.ResponseWriter, r *http.Request, status int, sess *session, c *Client, u *User, set access.Set, v consentView) {
	data := map[string]any{"ClientName": c.Name, "Username": u.Username, "CSRF": sess.CSRF, "Scopes": v.Scopes,
		"Offline": set.Has("offline_access"), "Patients": v.Patients, "Patient": v.Patient,
		"AskEncounter": v.AskEncounter, "Encounters": v.Encounters, "EncounterLater": v.EncounterLater, "Error": v.Error}
	// The consent form's answer is a 302 to the app, which browsers check
	// against form-action.
	var formAction []string
	if src, ok := web.FormActionSource(sess.Req.RedirectURI); ok {
		formAction = append(formAction, src)
	}
	if err := web.Render(w, status, "consent", data, formAction...); err != nil {
		s.logger(r.Context()).ErrorContext(r.Context(), "rendering consent", "err", err)
	}
}

// handleConsent records the user's decision and answers the app with a
// 302 to its redirect URI carrying a code (RFC 6749 §4.1.2) or
// access_denied.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, c, u, ok := s.consentUser(w, r)
	if !ok {
		return
	}
	form, ok := s.checkForm(w, r, sess)
	if !ok {
		return
	}
	req := sess.Req
	// end forgets the request before it is answered, so that the form
	// cannot be posted twice for a second code.
	end := func() bool {
		sess.Req = nil
		if err := s.saveSession(ctx, w, sess, false); err != nil {
			s.internalError(w, r, err)
			return false
		}
		return true
	}
	deny := func(desc string) {
		if end() {
			redirectError(w, r, req.RedirectURI, req.State, "access_denied", desc)
		}
	}
	if form.Get("decision") != "allow" {
		deny("the user denied access")
		return
	}
	offered, patients, err := s.offer(ctx, c, u, req)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	var ticked access.Set
	for _, v := range form["scope"] {
		sc, err := access.Parse(v)
		if err != nil {
			continue // not something we offered
		}
		ticked = append(ticked, sc)
	}
	granted := ticked.Intersect(offered)
	if !req.EHRLaunch && !granted.Has("launch/patient") {
		granted = withoutWord(granted, "launch/encounter")
	}
	if len(granted) == 0 {
		deny("no permission was granted")
		return
	}
	g := &Grant{ClientID: c.ID, Username: u.Username, FHIRUser: u.FHIRUser, Nonce: req.Nonce, Created: s.now()}
	if req.EHRLaunch {
		g.Patient, g.Encounter = req.LaunchPatient, req.LaunchEncounter
	} else if granted.Has("launch/patient") {
		chosen := form.Get("patient")
		switch {
		case chosen == "" && len(patients) == 1:
			g.Patient = patients[0]
		case chosen != "" && slices.Contains(patients, chosen):
			g.Patient = chosen
		case chosen != "" && slices.Contains(userPatients(u), chosen):
			// Listed when the page was drawn; opted out since.
			deny("the patient has opted out of access by third-party apps")
			return
		default:
			deny("no patient was chosen")
			return
		}
	}
	if standaloneEncounter(req, granted) {
		// The choices are listed again rather than taken from the form or
		// the session: only an encounter of this patient that the picker
		// would offer now can be chosen.
		encs, err := s.cfg.Encounters.PatientEncounters(ctx, g.Patient, encounterPickerLimit)
		if err != nil {
			s.internalError(w, r, fmt.Errorf("encounters of the patient: %w", err))
			return
		}
		chosen := form.Get("encounter")
		if len(encs) > 0 && encounterIndex(encs, chosen) < 0 {
			// The patient was just chosen (or no encounter was): show the
			// picker for that patient, keeping the user's other answers.
			// The request stays in the session for the next post.
			v := consentView{Scopes: scopeChoices(offered, form["scope"]), AskEncounter: true, Encounters: encounterOptions(encs)}
			if len(patients) > 1 {
				v.Patient = g.Patient
			}
			status := http.StatusOK
			if chosen != "" {
				v.Error = "The visit you chose is not one of this patient's visits listed below. Choose one of them."
				status = http.StatusBadRequest
			}
			s.renderConsent(w, r, status, sess, c, u, offered, v)
			return
		}
		if len(encs) > 0 {
			g.Encounter = chosen
		}
	}
	if out, err := s.optedOut(ctx, grantPatients(g)); err != nil {
		s.internalError(w, r, err)
		return
	} else if len(out) > 0 {
		deny("the patient has opted out of access by third-party apps")
		return
	}
	if !end() {
		return
	}
	g.Scopes = granted.String()
	if g.ID, err = s.newID(); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		s.internalError(w, r, err)
		return
	}
	code, err := s.newSecret()
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	now := s.now()
	if err := s.store.CreateCode(ctx, &Code{Hash: hash(code), GrantID: g.ID, ClientID: c.ID, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, Created: now, Expires: now.Add(s.cfg.CodeLifetime)}); err != nil {
		s.internalError(w, r, err)
		return
	}
	q := url.Values{"code": {code}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	http.Redirect(w, r, withQuery(req.RedirectURI, q), http.StatusFound)
}

// NewLaunch stores an EHR launch context for one user of one client and
// returns the opaque launch value and the URL that starts the app
// (SMART App Launch 2.2 §"EHR Launch": launch_url?iss=…&launch=…).
func (s *Server) NewLaunch(ctx context.Context, clientID, username, patient, encounter string) (launchURL, launch string, err error) {
	c, err := s.store.Client(ctx, clientID)
	if err != nil {
		return "", "", fmt.Errorf("client %q: %w", clientID, err)
	}
	if _, err := s.store.User(ctx, username); err != nil {
		return "", "", fmt.Errorf("user %q: %w", username, err)
	}
	if patient == "" {
		return "", "", errors.New("a launch needs a patient")
	}
	if launch, err = s.newSecret(); err != nil {
		return "", "", err
	}
	now := s.now()
	l := &LaunchContext{Hash: hash(launch), ClientID: c.ID, Username: username, Patient: patient, Encounter: encounter,
		Created: now, Expires: now.Add(launchLifetime)}
	if err := s.store.CreateLaunch(ctx, l); err != nil {
		return "", "", fmt.Errorf("storing launch: %w", err)
	}
	base := c.LaunchURL
	if base == "" {
		return "", launch, nil
	}
	return withQuery(base, url.Values{"iss": {s.cfg.FHIRBase}, "launch": {launch}}), launch, nil
}

// launchLifetime bounds how long a prepared EHR launch can be used.
const launchLifetime = time.Hour
