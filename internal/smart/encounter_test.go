package smart

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeEncounters is an EncounterFinder over a fixed list per patient,
// already in the order the picker shows (latest first).
type fakeEncounters struct {
	byPatient map[string][]EncounterChoice
	err       error

	mu    sync.Mutex
	asked []string // patient ids, in call order
}

var _ EncounterFinder = (*fakeEncounters)(nil)

func (f *fakeEncounters) PatientEncounters(ctx context.Context, patientID string, limit int) ([]EncounterChoice, error) {
	f.mu.Lock()
	f.asked = append(f.asked, patientID)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	encs := f.byPatient[patientID]
	return encs[:min(limit, len(encs))], nil
}

func newEncounterFixture() *fakeEncounters {
	return &fakeEncounters{byPatient: map[string][]EncounterChoice{
		"85": {
			{ID: "E2", Start: "2024-03-04T09:00:00Z", End: "2024-03-04T09:30:00Z", Type: "Office visit", Class: "ambulatory", Status: "finished"},
			{ID: "E1", Start: "2023-11-20", End: "2023-11-23", Type: "Hospital admission", Class: "inpatient encounter", Status: "finished"},
		},
		"355": {
			{ID: "E7", Start: "2024-01-02T10:00:00+01:00", Type: "", Class: "virtual", Status: "in-progress"},
		},
	}}
}

var encounterRadioRE = regexp.MustCompile(`name="encounter" value="([^"]*)"( checked)?`)

// encounterRadios are the values of the page's encounter radio inputs and
// the one checked.
func encounterRadios(p page) (values []string, checked string) {
	for _, m := range encounterRadioRE.FindAllStringSubmatch(p.body, -1) {
		v := html.UnescapeString(m[1])
		values = append(values, v)
		if m[2] != "" {
			checked = v
		}
	}
	return values, checked
}

// postConsent posts the consent form of p with exactly the given fields
// (besides the CSRF token and decision=allow).
func (b *browser) postConsent(p page, fields url.Values) page {
	b.h.t.Helper()
	form := url.Values{"decision": {"allow"}, "csrf_token": {csrf(p)}}
	for k, v := range fields {
		form[k] = v
	}
	return b.post(b.h.base+"/consent", form)
}

func checkedScopes(p page) []string {
	var out []string
	for _, m := range regexp.MustCompile(`name="scope" value="([^"]*)" checked`).FindAllStringSubmatch(p.body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func TestStandaloneEncounterCapability(t *testing.T) {
	tests := []struct {
		name   string
		finder EncounterFinder
		want   bool
	}{
		{"advertised with an encounter finder", newEncounterFixture(), true},
		{"not advertised without one", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Encounters = tt.finder })
			caps := h.srv.SMARTConfiguration()["capabilities"].([]string)
			if got := slices.Contains(caps, "context-standalone-encounter"); got != tt.want {
				t.Errorf("context-standalone-encounter advertised = %v, want %v (%v)", got, tt.want, caps)
			}
			if !slices.Contains(caps, "context-standalone-patient") || !slices.Contains(caps, "context-ehr-encounter") {
				t.Errorf("capabilities lost the others: %v", caps)
			}
		})
	}
	// The package-level list must not be changed by adding to it.
	if slices.Contains(capabilities, "context-standalone-encounter") {
		t.Errorf("capabilities list was modified in place")
	}
}

func TestStandaloneEncounterPicker(t *testing.T) {
	finder := newEncounterFixture()
	h := newHarness(t, func(c *Config) { c.Encounters = finder })
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "openid launch/patient launch/encounter offline_access patient/*.rs"})
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/85"})
	h.user(UserSpec{Username: "mom", Role: RoleRelatedPerson, FHIRUser: "RelatedPerson/9", Patients: []string{"85", "355"}})
	h.user(UserSpec{Username: "solo", Role: RolePatient, FHIRUser: "Patient/999"})
	scope := "launch/patient launch/encounter offline_access patient/Observation.rs patient/Condition.rs"

	start := func(t *testing.T, user, seed, scope string) (*browser, page, string) {
		t.Helper()
		verifier, challenge := pkce(seed)
		b := h.browser()
		p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: scope, challenge: challenge})), user, "correct horse")
		if p.status != http.StatusOK || p.url.Path != "/consent" {
			t.Fatalf("login led to %d %s", p.status, p.url)
		}
		return b, p, verifier
	}
	exchange := func(t *testing.T, p page, verifier string) map[string]any {
		t.Helper()
		code := p.url.Query().Get("code")
		if p.status != http.StatusFound || code == "" {
			t.Fatalf("consent answered %d %s, want a redirect with a code: %s", p.status, p.url, p.body)
		}
		status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, id, secret)
		if status != 200 {
			t.Fatalf("token = %d %v", status, tok)
		}
		return tok
	}
	checkEncounter := func(t *testing.T, tok map[string]any, want string) {
		t.Helper()
		if got, _ := tok["encounter"].(string); got != want {
			t.Errorf("token encounter = %q, want %q", got, want)
		}
		fc, _ := json.Marshal(tok["fhirContext"])
		wantFC := "null"
		if want != "" {
			wantFC = `[{"reference":"Encounter/` + want + `"}]`
		}
		if string(fc) != wantFC {
			t.Errorf("fhirContext = %s, want %s", fc, wantFC)
		}
		_, in, _ := h.postJSON("/oauth/introspect", url.Values{"token": {tok["access_token"].(string)}}, id, secret)
		if got, _ := in["encounter"].(string); in["active"] != true || got != want {
			t.Errorf("introspection = %v, want active with encounter %q", in, want)
		}
	}

	t.Run("one patient: the page lists their encounters, latest first", func(t *testing.T) {
		b, p, verifier := start(t, "pat", "a", scope)
		values, checked := encounterRadios(p)
		if !slices.Equal(values, []string{"E2", "E1"}) || checked != "E2" {
			t.Errorf("encounter radios = %v checked %q, want [E2 E1] with E2 checked", values, checked)
		}
		for _, label := range []string{"2024-03-04 · Office visit · ambulatory (finished)", "2023-11-20 to 2023-11-23 · Hospital admission · inpatient encounter"} {
			if !strings.Contains(p.body, label) {
				t.Errorf("consent page lacks the label %q", label)
			}
		}
		if strings.Contains(p.body, `name="patient"`) {
			t.Errorf("one patient, yet a patient picker")
		}
		tok := exchange(t, b.postConsent(p, url.Values{"scope": checkedScopes(p), "encounter": {"E1"}}), verifier)
		if tok["patient"] != "85" || !strings.Contains(tok["scope"].(string), "launch/encounter") {
			t.Errorf("token = %v, want patient 85 and launch/encounter granted", tok)
		}
		checkEncounter(t, tok, "E1")

		status, r1, _ := h.tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}}, id, secret)
		if status != 200 || r1["encounter"] != "E1" {
			t.Errorf("refresh = %d %v, want the encounter again", status, r1)
		}
	})

	t.Run("an encounter that was not offered is refused", func(t *testing.T) {
		for _, forged := range []string{"E7", "nope", "E1 "} {
			b, p, verifier := start(t, "pat", "b", scope)
			p2 := b.postConsent(p, url.Values{"scope": checkedScopes(p), "encounter": {forged}})
			if p2.status != http.StatusBadRequest || p2.url.Query().Has("code") || !strings.Contains(p2.body, `role="alert"`) {
				t.Fatalf("posting encounter %q = %d %s, want 400 with the picker again", forged, p2.status, p2.url)
			}
			if values, _ := encounterRadios(p2); !slices.Equal(values, []string{"E2", "E1"}) {
				t.Errorf("picker shown again = %v", values)
			}
			// The authorization is still in progress: a valid choice goes on.
			checkEncounter(t, exchange(t, b.postConsent(p2, url.Values{"scope": checkedScopes(p2), "encounter": {"E2"}}), verifier), "E2")
		}
	})

	t.Run("no encounter posted shows the picker again", func(t *testing.T) {
		b, p, verifier := start(t, "pat", "c", scope)
		p2 := b.postConsent(p, url.Values{"scope": {"launch/patient", "launch/encounter", "patient/Observation.rs"}})
		if p2.status != http.StatusOK || strings.Contains(p2.body, `role="alert"`) {
			t.Fatalf("posting without encounter = %d %s, want the picker", p2.status, p2.url)
		}
		if got, want := checkedScopes(p2), []string{"launch/patient", "launch/encounter", "patient/Observation.rs"}; !slices.Equal(got, want) {
			t.Errorf("ticked scopes after the picker step = %v, want the ones posted %v", got, want)
		}
		tok := exchange(t, b.postConsent(p2, url.Values{"scope": checkedScopes(p2), "encounter": {"E1"}}), verifier)
		if tok["scope"] != "launch/patient launch/encounter patient/Observation.rs" {
			t.Errorf("scope = %v", tok["scope"])
		}
		checkEncounter(t, tok, "E1")
	})

	t.Run("several patients: the encounter is picked after the patient", func(t *testing.T) {
		b, p, _ := start(t, "mom", "d", scope)
		if values, _ := encounterRadios(p); len(values) != 0 || !strings.Contains(p.body, `name="patient" value="355"`) {
			t.Fatalf("first step: encounter radios %v; want a patient picker and no encounters yet", values)
		}
		ticked := []string{"launch/patient", "launch/encounter", "patient/Observation.rs"}
		p2 := b.postConsent(p, url.Values{"scope": ticked, "patient": {"355"}})
		if p2.status != http.StatusOK || p2.url.Path != "/consent" {
			t.Fatalf("after choosing the patient: %d %s, want the encounter picker", p2.status, p2.url)
		}
		if values, checked := encounterRadios(p2); !slices.Equal(values, []string{"E7"}) || checked != "E7" {
			t.Errorf("encounters of Patient/355 = %v checked %q, want [E7]", values, checked)
		}
		if !strings.Contains(p2.body, `type="hidden" name="patient" value="355"`) || strings.Contains(p2.body, `type="radio" name="patient"`) {
			t.Errorf("the chosen patient is not carried (or is asked again)")
		}
		if got := checkedScopes(p2); !slices.Equal(got, ticked) {
			t.Errorf("ticked scopes = %v, want %v", got, ticked)
		}
		if !strings.Contains(p2.body, "2024-01-02 · Visit · virtual (in-progress)") {
			t.Errorf("label of an untyped encounter missing")
		}

		// Another patient's encounter cannot ride along with this patient.
		if p3 := b.postConsent(p2, url.Values{"scope": ticked, "patient": {"355"}, "encounter": {"E2"}}); p3.status != http.StatusBadRequest {
			t.Errorf("encounter of Patient/85 with Patient/355 = %d, want 400", p3.status)
		}
		// Nor can a patient the user may not see.
		if p3 := b.postConsent(p2, url.Values{"scope": ticked, "patient": {"999"}, "encounter": {"E7"}}); p3.status != http.StatusFound || p3.url.Query().Get("error") != "access_denied" {
			t.Errorf("unlisted patient = %d %s, want access_denied", p3.status, p3.url)
		}
		b2, p, verifier := start(t, "mom", "e", scope)
		p2 = b2.postConsent(p, url.Values{"scope": ticked, "patient": {"355"}})
		tok := exchange(t, b2.postConsent(p2, url.Values{"scope": checkedScopes(p2), "patient": {"355"}, "encounter": {"E7"}}), verifier)
		if tok["patient"] != "355" {
			t.Errorf("patient = %v, want 355", tok["patient"])
		}
		checkEncounter(t, tok, "E7")
	})

	t.Run("a patient without encounters gets no encounter", func(t *testing.T) {
		b, p, verifier := start(t, "solo", "f", scope)
		if values, _ := encounterRadios(p); len(values) != 0 || !strings.Contains(p.body, "No visits were found") {
			t.Errorf("page for a patient without encounters: radios %v, or no notice", values)
		}
		tok := exchange(t, b.postConsent(p, url.Values{"scope": checkedScopes(p), "encounter": {"E1"}}), verifier)
		if tok["patient"] != "999" {
			t.Errorf("patient = %v", tok["patient"])
		}
		checkEncounter(t, tok, "")
	})

	t.Run("launch/encounter comes only with launch/patient", func(t *testing.T) {
		b, p, verifier := start(t, "pat", "g", scope)
		tok := exchange(t, b.postConsent(p, url.Values{"scope": {"launch/encounter", "patient/Observation.rs"}, "encounter": {"E2"}}), verifier)
		if tok["scope"] != "patient/Observation.rs" || tok["patient"] != nil {
			t.Errorf("token = %v, want only patient/Observation.rs", tok)
		}
		checkEncounter(t, tok, "")

		_, p, _ = start(t, "pat", "h", "launch/encounter patient/Observation.rs")
		if strings.Contains(p.body, `value="launch/encounter"`) || strings.Contains(p.body, `name="encounter"`) {
			t.Errorf("launch/encounter offered without launch/patient")
		}
	})

	t.Run("finder failure is an internal error", func(t *testing.T) {
		h2 := newHarness(t, func(c *Config) { c.Encounters = &fakeEncounters{err: errors.New("database down")} })
		id2 := h2.clientPublic("launch/patient launch/encounter patient/*.rs")
		h2.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/85"})
		_, challenge := pkce("i")
		b := h2.browser()
		p := b.login(b.get(h2.authorizeURL(authz{clientID: id2, scope: "launch/patient launch/encounter patient/Observation.rs", challenge: challenge})), "pat", "correct horse")
		if p.status != http.StatusInternalServerError || strings.Contains(p.body, "database down") {
			t.Errorf("consent page with a failing finder = %d, want 500 without the cause", p.status)
		}
	})

	if !slices.Contains(finder.asked, "355") || !slices.Contains(finder.asked, "85") {
		t.Errorf("finder asked for %v", finder.asked)
	}
}

func TestStandaloneEncounterWithoutFinder(t *testing.T) {
	h := newHarness(t)
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "launch/patient launch/encounter patient/*.rs"})
	h.user(UserSpec{Username: "pat", Role: RolePatient, FHIRUser: "Patient/85"})
	verifier, challenge := pkce("a")
	code := h.code(authz{clientID: id, scope: "launch/patient launch/encounter patient/Observation.rs", challenge: challenge}, "pat")
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, id, secret)
	if status != 200 || tok["scope"] != "launch/patient patient/Observation.rs" || tok["encounter"] != nil {
		t.Errorf("token = %d %v, want launch/encounter left out and no encounter", status, tok)
	}
}

func TestEHRLaunchEncounterIgnoresPicker(t *testing.T) {
	finder := newEncounterFixture()
	h := newHarness(t, func(c *Config) { c.Encounters = finder })
	id, secret := h.client(ClientSpec{Type: ConfidentialSymmetric, Scopes: "launch launch/patient launch/encounter patient/*.rs"})
	h.user(UserSpec{Username: "doc", Role: RolePractitioner, FHIRUser: "Practitioner/7", Patients: []string{"85"}})
	_, launch, err := h.srv.NewLaunch(context.Background(), id, "doc", "85", "E-ehr")
	if err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce("j")
	b := h.browser()
	p := b.login(b.get(h.authorizeURL(authz{clientID: id, scope: "launch launch/encounter patient/Observation.rs", launch: launch, challenge: challenge})), "doc", "correct horse")
	if values, _ := encounterRadios(p); len(values) != 0 {
		t.Errorf("EHR launch shows an encounter picker: %v", values)
	}
	p = b.consent(p, "allow", nil, "")
	status, tok, _ := h.tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {p.url.Query().Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}, id, secret)
	if status != 200 || tok["encounter"] != "E-ehr" {
		t.Errorf("EHR launch token = %d %v, want the launch's encounter", status, tok)
	}
	if len(finder.asked) != 0 {
		t.Errorf("EHR launch searched encounters of %v", finder.asked)
	}
}

func TestVisitDates(t *testing.T) {
	tests := []struct {
		name, start, end, want string
	}{
		{"same day", "2024-03-04T09:00:00Z", "2024-03-04T10:00:00Z", "2024-03-04"},
		{"several days", "2023-11-20", "2023-11-23T08:00:00-05:00", "2023-11-20 to 2023-11-23"},
		{"still open", "2024-01-02T10:00:00+01:00", "", "2024-01-02"},
		{"only an end", "", "2024-01-02", "Until 2024-01-02"},
		{"no period", "", "", "Date unknown"},
		{"year only", "2020", "", "2020"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := visitDates(tt.start, tt.end); got != tt.want {
				t.Errorf("visitDates(%q, %q) = %q, want %q", tt.start, tt.end, got, tt.want)
			}
		})
	}
}
