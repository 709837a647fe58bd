package smart

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/access"
)

// authorizeAs runs a standalone launch of client id for username, picking
// patient when the consent page offers a picker, and returns where the
// consent step sent the browser (the app's redirect URI with a code or an
// error) and the PKCE verifier.
func (h *harness) authorizeAs(t *testing.T, id, username, scope, patient string) (*url.URL, string) {
	t.Helper()
	verifier, challenge := pkce("o")
	b := h.browser()
	p := b.consent(b.login(b.get(h.authorizeURL(authz{clientID: id, scope: scope, challenge: challenge})), username, "correct horse"), "allow", nil, patient)
	if p.status != http.StatusFound {
		t.Fatalf("consent of %s answered %d: %s", username, p.status, p.body)
	}
	return p.url, verifier
}

// userTokens authorizes public client id for username (authorizeAs) and
// exchanges the code.
func (h *harness) userTokens(t *testing.T, id, username, scope, patient string) map[string]any {
	t.Helper()
	u, verifier := h.authorizeAs(t, id, username, scope, patient)
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("authorizing %s for %q: %s, want a code", username, scope, u)
	}
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_id": {id}}, "", "")
	if status != 200 {
		t.Fatalf("exchange for %s = %d %v", username, status, tok)
	}
	return tok
}

// rulePatients are the patients the policy's rules for Observation reads
// reach, sorted ("*" for all).
func rulePatients(p *access.Policy) []string {
	rules, unrestricted := p.Rules("Observation", access.Read)
	if unrestricted {
		return []string{"*"}
	}
	var out []string
	for _, r := range rules {
		if r.AllPatients {
			out = append(out, "*")
		}
		out = append(out, r.Patients...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestOptOut(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	id := h.clientPublic("launch/patient offline_access patient/*.rs user/*.rs")
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/1"})
	h.user(UserSpec{Username: "pat2", Role: RolePatient, FHIRUser: "Patient/2"})
	h.user(UserSpec{Username: "doc", Role: RolePractitioner, FHIRUser: "Practitioner/7", Patients: []string{"1", "2"}})
	h.user(UserSpec{Username: "rel", Role: RoleRelatedPerson, FHIRUser: "RelatedPerson/9", Patients: []string{"1"}})
	at := func(tok map[string]any) string { return tok["access_token"].(string) }

	pat := h.userTokens(t, id, "pat", "launch/patient offline_access patient/*.rs", "")
	pat2 := h.userTokens(t, id, "pat2", "launch/patient patient/*.rs", "")
	docLaunch := h.userTokens(t, id, "doc", "launch/patient patient/*.rs", "1")
	docUser := h.userTokens(t, id, "doc", "user/*.rs", "")
	relUser := h.userTokens(t, id, "rel", "user/*.rs", "")
	// A Backend Services token: a grant without a user.
	backendID, backendSecret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "system/*.rs"})
	system := "backend-token-for-the-opt-out-test"
	now := h.clock.Now()
	if err := h.store.CreateGrant(ctx, &Grant{ID: "backend", ClientID: backendID, Scopes: "system/*.rs", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := h.store.CreateToken(ctx, &Token{Hash: hash(system), Kind: AccessToken, GrantID: "backend", ClientID: backendID,
		Scopes: "system/*.rs", Issued: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// A second replica on the same database, whose cache already holds
	// the patient's token.
	replica, err := New(Config{Issuer: h.base, Store: h.store, Now: h.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{at(pat), at(pat2), at(docLaunch), at(docUser), at(relUser), system} {
		if _, err := h.srv.Authenticate(ctx, tok); err != nil {
			t.Fatalf("before the opt-out: %v", err)
		}
	}
	if _, err := replica.Authenticate(ctx, at(pat)); err != nil {
		t.Fatal(err)
	}

	if err := h.srv.OptOut(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.OptOut(ctx, "1"); err != nil {
		t.Fatalf("opting out twice: %v", err)
	}

	t.Run("the patient's tokens end at once on this replica", func(t *testing.T) {
		for name, tok := range map[string]string{"the patient's own": at(pat), "a practitioner's launch for the patient": at(docLaunch)} {
			if _, err := h.srv.Authenticate(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s token: %v, want ErrInvalidToken", name, err)
			}
		}
		if _, err := h.srv.Authenticate(ctx, at(pat2)); err != nil {
			t.Errorf("another patient's token: %v", err)
		}
	})

	t.Run("the refresh token is refused", func(t *testing.T) {
		status, body, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pat["refresh_token"].(string)}, "client_id": {id}}, "", "")
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh = %d %v, want invalid_grant", status, body)
		}
	})

	t.Run("other replicas stop within the cache window", func(t *testing.T) {
		if _, err := replica.Authenticate(ctx, at(pat)); err != nil {
			t.Errorf("within the window the other replica still has the token cached: %v", err)
		}
		h.clock.Advance(5*time.Second + time.Millisecond) // the default BearerCacheTTL
		if _, err := replica.Authenticate(ctx, at(pat)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("after the window: %v, want ErrInvalidToken", err)
		}
	})

	t.Run("other users' user scopes no longer reach the patient", func(t *testing.T) {
		for _, c := range []struct {
			name, token string
			want        []string
		}{
			{"practitioner", at(docUser), []string{"2"}},
			{"related person", at(relUser), nil},
		} {
			info, err := h.srv.Authenticate(ctx, c.token)
			if err != nil {
				t.Errorf("%s token: %v", c.name, err)
				continue
			}
			if !slices.Equal(info.UserPatients, c.want) || !slices.Equal(rulePatients(info.Policy), c.want) {
				t.Errorf("%s reaches %v (policy %v), want %v", c.name, info.UserPatients, info.Policy, c.want)
			}
		}
	})

	t.Run("Backend Services tokens are not affected", func(t *testing.T) {
		info, err := h.srv.Authenticate(ctx, system)
		if err != nil || !slices.Equal(rulePatients(info.Policy), []string{"*"}) {
			t.Errorf("system token: %v, %v", info, err)
		}
	})

	t.Run("authorization is refused for the patient", func(t *testing.T) {
		for _, c := range []struct{ name, username, scope, patient string }{
			{"the patient signing in", "pat", "launch/patient patient/*.rs", ""},
			{"the patient, user scopes", "pat", "user/*.rs", ""},
			{"a practitioner picking the patient", "doc", "launch/patient patient/*.rs", "1"},
		} {
			u, _ := h.authorizeAs(t, id, c.username, c.scope, c.patient)
			if q := u.Query(); q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "opted out") || q.Get("code") != "" || q.Get("state") != "st" {
				t.Errorf("%s: redirected to %s, want access_denied saying the patient opted out", c.name, u)
			}
		}
		u, _ := h.authorizeAs(t, id, "doc", "launch/patient patient/*.rs", "2")
		if u.Query().Get("code") == "" {
			t.Errorf("a practitioner picking another patient: %s, want a code", u)
		}
	})

	t.Run("the patient picker leaves the patient out", func(t *testing.T) {
		doc3 := "doc3"
		h.user(UserSpec{Username: doc3, Role: RolePractitioner, FHIRUser: "Practitioner/8", Patients: []string{"1", "2", "3"}})
		_, challenge := pkce("p")
		b := h.browser()
		p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "launch/patient patient/*.rs", challenge: challenge})), doc3, "correct horse")
		if strings.Contains(p.body, `name="patient" value="1"`) || !strings.Contains(p.body, `name="patient" value="2"`) ||
			!strings.Contains(p.body, `name="patient" value="3"`) {
			t.Fatalf("the picker after patient 1 opted out, want 2 and 3 only:\n%s", p.body)
		}
		// A page drawn before the opt-out still posts the patient.
		if p := b.consent(p, "allow", nil, "1"); p.url.Query().Get("error") != "access_denied" ||
			!strings.Contains(p.url.Query().Get("error_description"), "opted out") {
			t.Errorf("posting the opted-out patient: %d %s, want access_denied saying the patient opted out", p.status, p.url)
		}
	})

	t.Run("an EHR launch for the patient is refused", func(t *testing.T) {
		ehr, _ := h.client(ClientSpec{Type: Public, Scopes: "launch patient/*.rs", LaunchURL: "https://app.example/launch"})
		_, launch, err := h.srv.NewLaunch(ctx, ehr, "doc", "1", "")
		if err != nil {
			t.Fatal(err)
		}
		_, challenge := pkce("e")
		b := h.browser()
		p := b.consent(b.login(b.get(h.authorizeURL(authz{clientID: ehr, scope: "launch patient/*.rs", launch: launch, challenge: challenge})), "doc", "correct horse"), "allow", nil, "")
		if p.status != http.StatusFound || p.url.Query().Get("error") != "access_denied" {
			t.Errorf("EHR launch for an opted-out patient: %d %s, want access_denied", p.status, p.url)
		}
	})

	t.Run("a grant made in a race with the opt-out issues nothing", func(t *testing.T) {
		// As if consent had checked just before the opt-out and stored
		// the grant just after it.
		now := h.clock.Now()
		race := []struct{ grant, patient, fhirUser, username string }{
			{"race-launch", "1", "Practitioner/7", "doc"},
			{"race-user", "", "Patient/1", "pat"},
		}
		for _, r := range race {
			if err := h.store.CreateGrant(ctx, &Grant{ID: r.grant, ClientID: id, Username: r.username, FHIRUser: r.fhirUser, Patient: r.patient,
				Scopes: "offline_access patient/*.rs user/*.rs", Created: now}); err != nil {
				t.Fatal(err)
			}
			for _, k := range []TokenKind{AccessToken, RefreshToken} {
				if err := h.store.CreateToken(ctx, &Token{Hash: hash(r.grant + string(k)), Kind: k, GrantID: r.grant, ClientID: id,
					Scopes: "offline_access patient/*.rs user/*.rs", Issued: now, Expires: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		verifier, challenge := pkce("r")
		if err := h.store.CreateCode(ctx, &Code{Hash: hash("race-code"), GrantID: "race-user", ClientID: id, RedirectURI: redirect,
			CodeChallenge: challenge, Created: now, Expires: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		status, body, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {"race-code"}, "redirect_uri": {redirect},
			"code_verifier": {verifier}, "client_id": {id}}, "", "")
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("code exchange = %d %v, want invalid_grant", status, body)
		}
		for _, r := range race {
			if _, err := h.srv.Authenticate(ctx, r.grant+string(AccessToken)); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("%s access token: %v, want ErrInvalidToken", r.grant, err)
			}
			status, body, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.grant + string(RefreshToken)}, "client_id": {id}}, "", "")
			if status != 400 || body["error"] != "invalid_grant" {
				t.Errorf("%s refresh = %d %v, want invalid_grant", r.grant, status, body)
			}
			_, body, _ = h.postJSON("/oauth/introspect", url.Values{"token": {r.grant + string(AccessToken)}}, backendID, backendSecret)
			if body["active"] != false {
				t.Errorf("%s introspection = %v, want inactive", r.grant, body)
			}
		}
	})

	t.Run("opting back in resurrects nothing", func(t *testing.T) {
		list, err := h.srv.OptOuts(ctx)
		if err != nil || len(list) != 1 || list[0].PatientID != "1" {
			t.Fatalf("OptOuts = %+v, %v", list, err)
		}
		if err := h.srv.OptIn(ctx, "1"); err != nil {
			t.Fatal(err)
		}
		if err := h.srv.OptIn(ctx, "1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("opting in twice: %v, want ErrNotFound", err)
		}
		if _, err := h.srv.Authenticate(ctx, at(pat)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("the old token after opting back in: %v, want ErrInvalidToken", err)
		}
		if info, err := h.srv.Authenticate(ctx, at(docUser)); err != nil || !slices.Equal(info.UserPatients, []string{"1", "2"}) {
			t.Errorf("the practitioner after the patient opted back in: %v, %v", info, err)
		}
		fresh := h.userTokens(t, id, "pat", "launch/patient patient/*.rs", "")
		if _, err := h.srv.Authenticate(ctx, at(fresh)); err != nil {
			t.Errorf("a new authorization after opting back in: %v", err)
		}
	})
}

// fakePanels is a PanelFinder over a fixed map, recording what it was
// asked.
type fakePanels struct {
	mu     sync.Mutex
	panels map[string][]string
	err    error
	asked  []string
}

var _ PanelFinder = (*fakePanels)(nil)

func (f *fakePanels) Panel(_ context.Context, practitioner string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, practitioner)
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.panels[practitioner]), nil
}

func (f *fakePanels) set(practitioner string, patients []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.panels[practitioner], f.err = patients, err
}

func (f *fakePanels) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

func TestPractitionerPanel(t *testing.T) {
	panels := &fakePanels{panels: map[string][]string{"Practitioner/7": {"5", "1", "5"}, "Practitioner/8": {"6"}}}
	h := newHarness(t, func(c *Config) { c.Panels = panels })
	ctx := context.Background()
	id := h.clientPublic("user/*.rs")
	h.user(UserSpec{Username: "doc", Role: RolePractitioner, FHIRUser: "Practitioner/7", Patients: []string{"3"}})
	h.user(UserSpec{Username: "boss", Role: RoleAdmin, FHIRUser: "Practitioner/8"})
	h.user(UserSpec{Username: "rel", Role: RoleRelatedPerson, FHIRUser: "RelatedPerson/8", Patients: []string{"4"}})
	doc := h.userTokens(t, id, "doc", "user/*.rs", "")["access_token"].(string)

	info, err := h.srv.Authenticate(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the explicit list and the panel", func(t *testing.T) {
		want := []string{"1", "3", "5"}
		if !slices.Equal(info.UserPatients, want) || !slices.Equal(rulePatients(info.Policy), want) {
			t.Errorf("doc reaches %v (policy %v), want %v", info.UserPatients, info.Policy, want)
		}
		if got := panels.calls(); !slices.Equal(got, []string{"Practitioner/7"}) {
			t.Errorf("panels asked for %v", got)
		}
		want2 := access.Principal{ClientID: id, Username: "doc", FHIRUser: "Practitioner/7"}
		if got := info.Policy.Who(); got != want2 {
			t.Errorf("policy principal = %+v, want %+v", got, want2)
		}
	})

	t.Run("a cached token reuses its policy and panel", func(t *testing.T) {
		again, err := h.srv.Authenticate(ctx, doc)
		if err != nil || again != info || again.Policy != info.Policy {
			t.Errorf("second check = %p (policy %p), %v; want the cached %p (policy %p)", again, again.Policy, err, info, info.Policy)
		}
		if n := len(panels.calls()); n != 1 {
			t.Errorf("panel looked up %d times for one cache miss", n)
		}
	})

	t.Run("a cache miss looks the panel up again", func(t *testing.T) {
		panels.set("Practitioner/7", []string{"5"}, nil)
		h.clock.Advance(5*time.Second + time.Millisecond)
		info, err := h.srv.Authenticate(ctx, doc)
		if err != nil || !slices.Equal(info.UserPatients, []string{"3", "5"}) {
			t.Errorf("after the panel changed: %v, %v", info, err)
		}
		if n := len(panels.calls()); n != 2 {
			t.Errorf("panel looked up %d times for two cache misses", n)
		}
	})

	t.Run("an opted-out patient leaves the panel", func(t *testing.T) {
		if err := h.srv.OptOut(ctx, "5"); err != nil {
			t.Fatal(err)
		}
		info, err := h.srv.Authenticate(ctx, doc)
		if err != nil || !slices.Equal(info.UserPatients, []string{"3"}) || !slices.Equal(rulePatients(info.Policy), []string{"3"}) {
			t.Errorf("after patient 5 opted out: %v, %v", info, err)
		}
	})

	t.Run("only practitioners have a panel", func(t *testing.T) {
		before := len(panels.calls())
		for _, c := range []struct {
			username string
			want     []string
			admin    bool
		}{{"boss", nil, true}, {"rel", []string{"4"}, false}} {
			tok := h.userTokens(t, id, c.username, "user/*.rs", "")["access_token"].(string)
			info, err := h.srv.Authenticate(ctx, tok)
			if err != nil || !slices.Equal(info.UserPatients, c.want) || info.Policy.Who().Admin != c.admin {
				t.Errorf("%s: %v, %v; want patients %v, admin %v", c.username, info, err, c.want, c.admin)
			}
		}
		if got := panels.calls()[before:]; len(got) != 0 {
			t.Errorf("panels asked for %v", got)
		}
	})

	t.Run("a failing panel lookup fails the check and caches nothing", func(t *testing.T) {
		panels.set("Practitioner/7", nil, errors.New("database down"))
		h.clock.Advance(5*time.Second + time.Millisecond)
		if _, err := h.srv.Authenticate(ctx, doc); err == nil || errors.Is(err, ErrInvalidToken) {
			t.Errorf("check with a failing panel: %v, want an internal error", err)
		}
		panels.set("Practitioner/7", []string{"1"}, nil)
		if info, err := h.srv.Authenticate(ctx, doc); err != nil || !slices.Equal(info.UserPatients, []string{"1", "3"}) {
			t.Errorf("check once the panel answers: %v, %v", info, err)
		}
	})
}
