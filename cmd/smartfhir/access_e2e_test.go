package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The access control tests (issue 5) run the real server on every
// backend, with two patients, pa and pb, and tokens of every scope form.

const labCategory = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

func observation(id, patient, category, code string) string {
	return `{"resourceType":"Observation","id":"` + id + `","status":"final",
"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` + category + `"}]}],
"code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},
"subject":{"reference":"Patient/` + patient + `"},"performer":[{"reference":"Practitioner/pr1"}]}`
}

// accessData is what every access test starts from.
var accessData = []struct{ path, body string }{
	{"Patient/pa", `{"resourceType":"Patient","id":"pa","gender":"female","generalPractitioner":[{"reference":"Practitioner/pr1"}]}`},
	{"Patient/pb", `{"resourceType":"Patient","id":"pb","gender":"male"}`},
	{"Practitioner/pr1", `{"resourceType":"Practitioner","id":"pr1","name":[{"family":"Doe"}]}`},
	{"Observation/oa-lab", observation("oa-lab", "pa", "laboratory", "2345-7")},
	{"Observation/oa-vit", observation("oa-vit", "pa", "vital-signs", "8867-4")},
	{"Observation/ob-lab", observation("ob-lab", "pb", "laboratory", "2345-7")},
	{"Condition/ca", `{"resourceType":"Condition","id":"ca","subject":{"reference":"Patient/pa"}}`},
	{"Condition/cb", `{"resourceType":"Condition","id":"cb","subject":{"reference":"Patient/pb"}}`},
}

// accessEnv is a server loaded with accessData and tokens by name.
type accessEnv struct {
	*authEnv
	s      *testServer
	tokens map[string]string
}

func startAccess(t *testing.T, dbArgs []string, serveArgs ...string) *accessEnv {
	s := startServer(t, append(slices.Clone(dbArgs), serveArgs...)...)
	e := &accessEnv{authEnv: &authEnv{t: t, base: s.BaseURL, dataDir: s.DataDir, dbArgs: dbArgs}, s: s, tokens: map[string]string{}}
	e.tokens["system"] = s.systemToken(t, "system/*.cruds")
	for _, d := range accessData {
		if st, body := e.call("system", http.MethodPut, d.path, d.body); st != 201 {
			t.Fatalf("PUT %s = %d %s", d.path, st, body)
		}
	}
	e.tokens["none"] = ""
	e.tokens["invalid"] = "not-a-token-at-all-0123456789"
	e.tokens["system-obs-rs"] = s.systemToken(t, "system/Observation.rs")
	e.cli("users", "add", "--username", "pat", "--password", "correct horse", "--role", "patient", "--fhir-user", "Patient/pa")
	e.cli("users", "add", "--username", "doc", "--password", "correct horse", "--role", "practitioner", "--fhir-user", "Practitioner/pr1", "--patients", "pa")
	e.tokens["patient-v2"] = e.userToken("pat", "", "patient/*.cruds")
	e.tokens["patient-v1"] = e.userToken("pat", "", "patient/*.read")
	e.tokens["patient-granular"] = e.userToken("pat", "", "patient/Observation.rs?category="+labCategory)
	e.tokens["user-doc"] = e.userToken("doc", "", "user/*.rs")
	return e
}

// userToken signs username in through the standalone launch and returns
// the access token granting scopes (with launch/patient; patient picks the
// patient when the user has several).
func (e *accessEnv) userToken(username, patient, scopes string) string {
	e.t.Helper()
	return e.loginToken(username, patient, "launch/patient "+scopes)
}

// loginToken signs username in through a standalone launch of a new app
// asking for exactly scopes and returns the access token.
func (e *accessEnv) loginToken(username, patient, scopes string) string {
	t := e.t
	t.Helper()
	c := e.cliJSON("clients", "add", "--name", "app "+scopes, "--type", "confidential-symmetric", "--redirect-uri", e2eRedirect, "--scopes", scopes, "--approve")
	cfg := e.oauthConfig(c["client_id"], c["client_secret"], oauth2.AuthStyleInHeader, strings.Fields(scopes)...)
	verifier := oauth2.GenerateVerifier()
	redirect := e.browse(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", e.base+"/fhir")),
		username, "correct horse", nil, patient)
	tok, err := cfg.Exchange(context.Background(), redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token of %s for %q: %v", username, scopes, err)
	}
	return tok.AccessToken
}

// call sends a request with the named token (exactly: rawClient adds none).
func (e *accessEnv) call(token, method, path, body string) (int, []byte) {
	e.t.Helper()
	st, _, b := e.callHeader(token, method, path, body)
	return st, b
}

func (e *accessEnv) callHeader(token, method, path, body string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+"/fhir/"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	tok, ok := e.tokens[token]
	if !ok {
		e.t.Fatalf("no token %q", token)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// pages runs a search with the named token and calls fn with each page's
// body, following next links.
func (e *accessEnv) pages(token, query string, fn func(body []byte)) {
	e.t.Helper()
	for path := query; path != ""; {
		st, body := e.call(token, http.MethodGet, path, "")
		if st != 200 {
			e.t.Fatalf("GET %s as %s = %d %s", path, token, st, body)
		}
		fn(body)
		var b struct {
			Link []struct{ Relation, URL string }
		}
		if err := json.Unmarshal(body, &b); err != nil {
			e.t.Fatal(err)
		}
		path = ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				path = strings.TrimPrefix(l.URL, e.base+"/fhir/")
			}
		}
	}
}

// ids runs a search with the named token and returns "Type/id" of every
// entry of accessData (matches and includes), sorted, following next
// links.
func (e *accessEnv) ids(token, query string) []string {
	e.t.Helper()
	var out []string
	e.pages(token, query, func(body []byte) {
		var b struct {
			Entry []struct {
				Resource struct{ ResourceType, ID string }
			}
		}
		if err := json.Unmarshal(body, &b); err != nil {
			e.t.Fatal(err)
		}
		for _, en := range b.Entry {
			id := en.Resource.ResourceType + "/" + en.Resource.ID
			// Only the fixed data: other tests create resources too.
			if slices.ContainsFunc(accessData, func(d struct{ path, body string }) bool { return d.path == id }) {
				out = append(out, id)
			}
		}
	})
	slices.Sort(out)
	return out
}

func (e *accessEnv) total(token, query string) float64 {
	e.t.Helper()
	st, body := e.call(token, http.MethodGet, query, "")
	var b struct{ Total float64 }
	if st != 200 || json.Unmarshal(body, &b) != nil {
		e.t.Fatalf("GET %s as %s = %d %s", query, token, st, body)
	}
	return b.Total
}

func TestAccessControl(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		e := startAccess(t, dbArgs)
		t.Run("authentication", func(t *testing.T) { testAuthentication(t, e) })
		t.Run("matrix", func(t *testing.T) { testAccessMatrix(t, e) })
		t.Run("patient token leaks nothing", func(t *testing.T) { testPatientLeaks(t, e) })
		t.Run("practitioner sees the assigned panel", func(t *testing.T) { testPractitionerPanel(t, e) })
		t.Run("granular token returns a subset", func(t *testing.T) { testGranularSubset(t, e) })
		t.Run("revocation", func(t *testing.T) { testRevocation(t, e) })
	})
}

func testAuthentication(t *testing.T, e *accessEnv) {
	e.t = t
	tests := []struct {
		name, token, path string
		status            int
		challenge         string // the WWW-Authenticate header, "" for none
	}{
		{"metadata needs no token", "none", "metadata", 200, ""},
		{"no token", "none", "Patient/pa", 401, `Bearer realm="` + e.base + `/fhir"`},
		{"no token on search", "none", "Observation?patient=pa", 401, `Bearer realm="` + e.base + `/fhir"`},
		{"no token on an unknown type", "none", "Nothing/1", 401, `Bearer realm="` + e.base + `/fhir"`},
		{"unknown token", "invalid", "Patient/pa", 401, `Bearer realm="` + e.base + `/fhir", error="invalid_token", error_description="the access token is not valid"`},
		{"scope lacks the type", "system-obs-rs", "Patient/pa", 403, `Bearer realm="` + e.base + `/fhir", error="insufficient_scope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			st, h, body := e.callHeader(tt.token, http.MethodGet, tt.path, "")
			if st != tt.status {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, st, body, tt.status)
			}
			if got := h.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if st != 200 && !strings.Contains(string(body), `"OperationOutcome"`) {
				t.Errorf("body = %s, want an OperationOutcome", body)
			}
		})
	}
	// A malformed Authorization header is no token.
	req, _ := http.NewRequest(http.MethodGet, e.base+"/fhir/Patient/pa", nil)
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("Basic credentials = %d, want 401", resp.StatusCode)
	}
}

func testAccessMatrix(t *testing.T, e *accessEnv) {
	newObs := func(patient, category string) string {
		return strings.Replace(observation("x", patient, category, "1-1"), `"id":"x",`, "", 1)
	}
	type req struct{ method, path, body string }
	reads := map[string]req{
		"read own Observation":          {"GET", "Observation/oa-lab", ""},
		"read own vital signs":          {"GET", "Observation/oa-vit", ""},
		"read other's Observation":      {"GET", "Observation/ob-lab", ""},
		"read other Patient":            {"GET", "Patient/pb", ""},
		"read Practitioner":             {"GET", "Practitioner/pr1", ""},
		"vread other's Observation":     {"GET", "Observation/ob-lab/_history/1", ""},
		"search Observation":            {"GET", "Observation?_count=1", ""},
		"search Condition":              {"GET", "Condition", ""},
		"create Observation for own":    {"POST", "Observation", newObs("pa", "laboratory")},
		"create Observation for other":  {"POST", "Observation", newObs("pb", "laboratory")},
		"create own vital signs":        {"POST", "Observation", newObs("pa", "vital-signs")},
		"update other's Observation":    {"PUT", "Observation/ob-lab", observation("ob-lab", "pb", "laboratory", "2345-7")},
		"move own Observation to other": {"PUT", "Observation/oa-lab", observation("oa-lab", "pb", "laboratory", "2345-7")},
		"delete other's Condition":      {"DELETE", "Condition/cb", ""},
		"type history":                  {"GET", "Observation/_history", ""},
		"system history":                {"GET", "_history", ""},
	}
	want := map[string]map[string]int{
		"none": {"read own Observation": 401, "search Observation": 401, "create Observation for own": 401, "delete other's Condition": 401, "system history": 401},
		"system-obs-rs": {"read own Observation": 200, "read other's Observation": 200, "read other Patient": 403, "read Practitioner": 403,
			"vread other's Observation": 200, "search Observation": 200, "search Condition": 403, "create Observation for own": 403,
			"update other's Observation": 403, "delete other's Condition": 403, "type history": 200, "system history": 403},
		"patient-v2": {"read own Observation": 200, "read other's Observation": 404, "read other Patient": 404, "read Practitioner": 200,
			"vread other's Observation": 404, "search Observation": 200, "search Condition": 200, "create Observation for own": 201,
			"create Observation for other": 403, "update other's Observation": 404, "move own Observation to other": 403,
			"delete other's Condition": 404, "type history": 403, "system history": 403},
		"patient-v1": {"read own Observation": 200, "read other's Observation": 404, "read Practitioner": 200, "search Condition": 200,
			"create Observation for own": 403, "update other's Observation": 403, "delete other's Condition": 403, "type history": 403},
		"patient-granular": {"read own Observation": 200, "read own vital signs": 404, "read other's Observation": 404,
			"read Practitioner": 403, "search Observation": 200, "search Condition": 403, "create own vital signs": 403, "create Observation for own": 403},
		"user-doc": {"read own Observation": 200, "read other's Observation": 404, "read other Patient": 404, "read Practitioner": 200,
			"search Observation": 200, "create Observation for own": 403, "type history": 403},
	}
	for token, cases := range want {
		for name, status := range cases {
			r, ok := reads[name]
			if !ok {
				t.Fatalf("no request %q", name)
			}
			t.Run(token+"/"+name, func(t *testing.T) {
				e.t = t
				st, body := e.call(token, r.method, r.path, r.body)
				if st != status {
					t.Errorf("%s %s as %s = %d, want %d; %.300s", r.method, r.path, token, st, status, body)
				}
			})
		}
	}
	// Nothing the refused writes asked for happened.
	e.t = t
	if st, body := e.call("system", "GET", "Observation/ob-lab", ""); st != 200 || !strings.Contains(string(body), `"versionId":"1"`) {
		t.Errorf("Observation/ob-lab after the refused writes = %d %s, want version 1", st, body)
	}
	if st, body := e.call("system", "GET", "Observation/oa-lab", ""); st != 200 || !strings.Contains(string(body), `Patient/pa"`) {
		t.Errorf("Observation/oa-lab after the refused move = %d %s", st, body)
	}
	if st, _ := e.call("system", "GET", "Condition/cb", ""); st != 200 {
		t.Errorf("Condition/cb after the refused delete = %d, want 200", st)
	}
}

func testPatientLeaks(t *testing.T, e *accessEnv) {
	e.t = t
	searches := []struct {
		name, query string
		want        []string
	}{
		{"by a code both patients have", "Observation?code=2345-7", []string{"Observation/oa-lab"}},
		{"search by the other patient", "Observation?patient=pb", nil},
		{"search by id", "Observation?_id=ob-lab,oa-lab", []string{"Observation/oa-lab"}},
		{"_include of the subject", "Observation?_id=oa-lab,ob-lab&_include=Observation:subject", []string{"Observation/oa-lab", "Patient/pa"}},
		{"_include of everything", "Observation?_include=*", []string{"Observation/oa-lab", "Observation/oa-vit", "Patient/pa", "Practitioner/pr1"}},
		{"_revinclude from the practitioner", "Practitioner?_id=pr1&_revinclude=Observation:performer&_revinclude=Patient:general-practitioner", []string{"Observation/oa-lab", "Observation/oa-vit", "Patient/pa", "Practitioner/pr1"}},
		{"_revinclude of every type", "Patient?_revinclude=*", []string{"Condition/ca", "Observation/oa-lab", "Observation/oa-vit", "Patient/pa"}},
		{"chained", "Observation?patient.gender=male", nil},
		{"_has", "Patient?_has:Observation:patient:_id=ob-lab", nil},
		{"_has on own data", "Practitioner?_has:Observation:performer:_id=ob-lab", nil},
	}
	for _, s := range searches {
		t.Run(s.name, func(t *testing.T) {
			e.t = t
			if got := e.ids("patient-v2", s.query); !slices.Equal(got, s.want) {
				t.Errorf("%s = %v, want %v", s.query, got, s.want)
			}
		})
	}
	t.Run("total counts only what is visible", func(t *testing.T) {
		e.t = t
		if got := e.total("patient-v2", "Observation?code=2345-7&_total=accurate&_count=0"); got != 1 {
			t.Errorf("total = %v, want 1", got)
		}
		if got := e.total("system", "Observation?code=2345-7&_total=accurate&_count=0"); got != 2 {
			t.Errorf("total with a system token = %v, want 2", got)
		}
		if got := e.total("patient-v2", "Observation?_summary=count&code=2345-7"); got != 1 {
			t.Errorf("_summary=count total = %v, want 1", got)
		}
	})
	t.Run("history of another patient's resource", func(t *testing.T) {
		e.t = t
		if st, body := e.call("patient-v2", "GET", "Observation/ob-lab/_history", ""); st != 404 {
			t.Errorf("history = %d %s, want 404", st, body)
		}
		if st, body := e.call("patient-v2", "GET", "Observation/oa-lab/_history", ""); st != 200 {
			t.Errorf("own history = %d %s, want 200", st, body)
		}
	})
	t.Run("conditional operations", func(t *testing.T) {
		e.t = t
		// The criteria match only pb's Observation: for this token nothing
		// matches, so the update creates a new resource of its own.
		st, body := e.call("patient-v2", "PUT", "Observation?_id=ob-lab", strings.Replace(observation("x", "pa", "laboratory", "2-2"), `"id":"x",`, "", 1))
		if st != 201 {
			t.Errorf("conditional update = %d %s, want 201 (a new resource)", st, body)
		}
		if st, body := e.call("patient-v2", "DELETE", "Observation?_id=ob-lab", ""); st != 204 {
			t.Errorf("conditional delete = %d %s, want 204 deleting nothing", st, body)
		}
		st, body = e.call("patient-v2", "POST", "Observation", strings.Replace(observation("x", "pa", "laboratory", "3-3"), `"id":"x",`, "", 1))
		if st != 201 {
			t.Fatalf("create = %d %s", st, body)
		}
		req, _ := http.NewRequest("POST", e.base+"/fhir/Observation", strings.NewReader(strings.Replace(observation("x", "pa", "laboratory", "4-4"), `"id":"x",`, "", 1)))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+e.tokens["patient-v2"])
		req.Header.Set("If-None-Exist", "_id=ob-lab")
		resp, err := rawClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Errorf("conditional create matching only another patient's = %d, want 201", resp.StatusCode)
		}
		if st, body := e.call("system", "GET", "Observation/ob-lab", ""); st != 200 || !strings.Contains(string(body), `"versionId":"1"`) {
			t.Errorf("Observation/ob-lab after the conditional operations = %d %s", st, body)
		}
	})
	t.Run("batch", func(t *testing.T) {
		e.t = t
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
{"request":{"method":"GET","url":"Observation/ob-lab"}},
{"request":{"method":"GET","url":"Observation/oa-lab"}},
{"request":{"method":"DELETE","url":"Observation/ob-lab"}},
{"request":{"method":"PUT","url":"Observation/ob-lab"},"resource":` + observation("ob-lab", "pa", "laboratory", "2345-7") + `},
{"request":{"method":"GET","url":"Observation/ob-lab/_history"}},
{"request":{"method":"POST","url":"Condition"},"resource":{"resourceType":"Condition","subject":{"reference":"Patient/pb"}}}]}`
		st, body := e.call("patient-v2", "POST", "", batch)
		if st != 200 {
			t.Fatalf("batch = %d %s", st, body)
		}
		var b struct {
			Entry []struct{ Response struct{ Status string } }
		}
		json.Unmarshal(body, &b)
		var got []string
		for _, en := range b.Entry {
			got = append(got, strings.Fields(en.Response.Status)[0])
		}
		want := []string{"404", "200", "404", "404", "404", "403"}
		if !slices.Equal(got, want) {
			t.Errorf("batch statuses = %v, want %v", got, want)
		}
		if strings.Contains(string(body), "Patient/pb") {
			t.Errorf("the batch response shows pb's data: %s", body)
		}
	})
}

func testPractitionerPanel(t *testing.T, e *accessEnv) {
	e.t = t
	if got, want := e.ids("user-doc", "Patient"), []string{"Patient/pa"}; !slices.Equal(got, want) {
		t.Errorf("Patient search = %v, want %v", got, want)
	}
	if got, want := e.ids("user-doc", "Observation"), []string{"Observation/oa-lab", "Observation/oa-vit"}; !slices.Equal(got, want) {
		t.Errorf("Observation search = %v, want %v", got, want)
	}
}

// testGranularSubset replays searches with a full and a granular token:
// the granular answer must be exactly the full one's laboratory results.
func testGranularSubset(t *testing.T, e *accessEnv) {
	queries := []string{"Observation?patient=pa", "Observation?code=2345-7,8867-4", "Observation?category=vital-signs",
		"Observation?patient=pa&category=laboratory", "Observation?_lastUpdated=gt2000-01-01&_count=1"}
	for _, q := range queries {
		t.Run(q, func(t *testing.T) {
			e.t = t
			full := e.ids("patient-v2", q)
			var want []string
			for _, id := range full {
				_, body := e.call("system", "GET", id, "")
				if strings.Contains(string(body), `"code":"laboratory"`) {
					want = append(want, id)
				}
			}
			if got := e.ids("patient-granular", q); !slices.Equal(got, want) {
				t.Errorf("granular %s = %v, want %v (full: %v)", q, got, want, full)
			}
		})
	}
}

// testRevocation: a revoked token stops working at once on the replica
// that revoked it, and a disabled client's tokens too.
func testRevocation(t *testing.T, e *accessEnv) {
	e.t = t
	cfg := e.s.backendClient(t, "system/Patient.rs")
	tok, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.tokens["revoked"] = tok.AccessToken
	if st, _ := e.call("revoked", "GET", "Patient/pa", ""); st != 200 {
		t.Fatalf("before revocation = %d", st)
	}
	req, _ := http.NewRequest("POST", e.base+"/oauth/revoke", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(cfg.ClientID, cfg.ClientSecret)
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("revoke = %d", resp.StatusCode)
	}
	if st, h, _ := e.callHeader("revoked", "GET", "Patient/pa", ""); st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("revoked token = %d %q, want 401 invalid_token", st, h.Get("WWW-Authenticate"))
	}

	cfg = e.s.backendClient(t, "system/Patient.rs")
	if tok, err = cfg.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.tokens["disabled"] = tok.AccessToken
	if st, _ := e.call("disabled", "GET", "Patient/pa", ""); st != 200 {
		t.Fatalf("before disabling = %d", st)
	}
	e.cli("clients", "disable", cfg.ClientID)
	// The CLI is another process as far as the server's cache goes: the
	// token stops within the cache window (5 s).
	deadline := time.Now().Add(7 * time.Second)
	for {
		st, _ := e.call("disabled", "GET", "Patient/pa", "")
		if st == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a disabled client's token still answers %d after the cache window", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
