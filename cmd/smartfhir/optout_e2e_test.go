package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// untilStatus repeats a request until it answers want (the bearer cache
// of the server holds a checked token for --token-cache-ttl), failing
// after a few seconds.
func (e *accessEnv) untilStatus(token, path string, want int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, h, body := e.callHeader(token, "GET", path, "")
		if st == want {
			if want == 401 && !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
				e.t.Errorf("401 without invalid_token: %q", h.Get("WWW-Authenticate"))
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET %s as %s = %d %s, want %d", path, token, st, body, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authorizeError runs a standalone launch for username and returns the
// error the app receives ("" when it receives a code).
func (e *accessEnv) authorizeError(username, scopes string) string {
	e.t.Helper()
	c := e.cliJSON("clients", "add", "--name", "app "+scopes, "--type", "confidential-symmetric", "--redirect-uri", e2eRedirect, "--scopes", scopes, "--approve")
	cfg := e.oauthConfig(c["client_id"], c["client_secret"], oauth2.AuthStyleInHeader, strings.Fields(scopes)...)
	u := e.browse(cfg.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("aud", e.base+"/fhir")),
		username, "correct horse", nil, "")
	if u.Query().Get("code") != "" {
		return ""
	}
	return u.Query().Get("error")
}

func TestOptOutAndPanels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		e := startAccess(t, dbArgs, "--token-cache-ttl", "1s")
		// A second practitioner, pr2, whose panel is only in the data.
		for _, d := range []struct{ path, body string }{
			{"Patient/pc", `{"resourceType":"Patient","id":"pc","generalPractitioner":[{"reference":"Practitioner/pr2"}]}`},
			{"Patient/pd", `{"resourceType":"Patient","id":"pd"}`},
			{"Patient/pe", `{"resourceType":"Patient","id":"pe"}`},
			{"Patient/pf", `{"resourceType":"Patient","id":"pf"}`},
			{"CareTeam/ct-d", `{"resourceType":"CareTeam","id":"ct-d","status":"active","subject":{"reference":"Patient/pd"},
				"participant":[{"member":{"reference":"Practitioner/pr2"},"period":{"start":"2020-01-01"}}]}`},
			{"CareTeam/ct-e", `{"resourceType":"CareTeam","id":"ct-e","status":"active","subject":{"reference":"Patient/pe"},
				"participant":[{"member":{"reference":"Practitioner/pr2"},"period":{"start":"2019-01-01","end":"2020-01-01"}}]}`},
			{"CareTeam/ct-f", `{"resourceType":"CareTeam","id":"ct-f","status":"inactive","subject":{"reference":"Patient/pf"},
				"participant":[{"member":{"reference":"Practitioner/pr2"}}]}`},
			{"Observation/oc", observation("oc", "pc", "laboratory", "2345-7")},
			{"Observation/oe", observation("oe", "pe", "laboratory", "2345-7")},
		} {
			if st, body := e.call("system", "PUT", d.path, d.body); st != 201 {
				t.Fatalf("PUT %s = %d %s", d.path, st, body)
			}
		}
		e.cli("users", "add", "--username", "doc2", "--password", "correct horse", "--role", "practitioner", "--fhir-user", "Practitioner/pr2")
		e.tokens["user-doc2"] = e.loginToken("doc2", "", "user/*.rs")

		t.Run("practitioner panel from generalPractitioner and active CareTeams", func(t *testing.T) {
			e.t = t
			var got []string
			for _, p := range []string{"pa", "pb", "pc", "pd", "pe", "pf"} {
				if st, _ := e.call("user-doc2", "GET", "Patient/"+p, ""); st == 200 {
					got = append(got, p)
				}
			}
			if want := []string{"pc", "pd"}; !slices.Equal(got, want) {
				t.Errorf("doc2 reads patients %v, want %v (generalPractitioner pc, active CareTeam pd)", got, want)
			}
			got = nil
			e.pages("user-doc2", "Patient?_id=pa,pb,pc,pd,pe,pf", func(body []byte) {
				var b struct {
					Entry []struct{ Resource struct{ ID string } }
				}
				if err := json.Unmarshal(body, &b); err != nil {
					t.Fatal(err)
				}
				for _, en := range b.Entry {
					got = append(got, en.Resource.ID)
				}
			})
			slices.Sort(got)
			if want := []string{"pc", "pd"}; !slices.Equal(got, want) {
				t.Errorf("doc2's Patient?_id= search = %v, want %v", got, want)
			}
			st, body := e.call("user-doc2", "GET", "Observation?code=2345-7", "")
			if st != 200 || !strings.Contains(string(body), `"id":"oc"`) || strings.Contains(string(body), `"id":"oe"`) || strings.Contains(string(body), `"id":"oa-lab"`) {
				t.Errorf("doc2's Observation search = %d %s", st, body)
			}
		})

		t.Run("opt-out ends the patient's tokens and hides them from others", func(t *testing.T) {
			e.t = t
			// doc's launch token is for pa; this one has no launch patient.
			e.tokens["doc-no-launch"] = e.loginToken("doc", "", "user/*.rs")
			for _, tok := range []string{"patient-v2", "user-doc", "doc-no-launch"} {
				if st, body := e.call(tok, "GET", "Patient/pa", ""); st != 200 {
					t.Fatalf("before the opt-out, Patient/pa as %s = %d %s", tok, st, body)
				}
			}
			if out := e.cli("optout", "add", "pa"); !strings.Contains(out, "Patient/pa opted out") {
				t.Errorf("optout add said %q", out)
			}
			e.untilStatus("patient-v2", "Patient/pa", 401)
			// A launch for pa ends too; the practitioner's other token
			// lives on, without pa.
			e.untilStatus("user-doc", "Patient/pa", 401)
			e.untilStatus("doc-no-launch", "Patient/pa", 404)
			if st, body := e.call("system", "GET", "Patient/pa", ""); st != 200 {
				t.Errorf("a Backend Services token after the opt-out = %d %s", st, body)
			}
			if errCode := e.authorizeError("pat", "launch/patient patient/*.rs"); errCode != "access_denied" {
				t.Errorf("authorizing an app for an opted-out patient: error %q, want access_denied", errCode)
			}
			list := e.cli("optout", "list", "--json")
			if !strings.Contains(list, `"patient": "pa"`) {
				t.Errorf("optout list = %s", list)
			}

			var removed struct {
				Patient  string
				OptedOut *bool `json:"opted_out"`
			}
			if err := json.Unmarshal([]byte(e.cli("optout", "remove", "pa", "--json")), &removed); err != nil || removed.Patient != "pa" || removed.OptedOut == nil || *removed.OptedOut {
				t.Errorf("optout remove --json = %+v, %v", removed, err)
			}
			if errCode := e.authorizeError("pat", "launch/patient patient/*.rs"); errCode != "" {
				t.Errorf("after opting back in, authorize answered %q", errCode)
			}
			// Nothing the opt-out ended comes back.
			if st, _ := e.call("patient-v2", "GET", "Patient/pa", ""); st != 401 {
				t.Errorf("the old token after opting back in = %d, want 401", st)
			}
			e.untilStatus("doc-no-launch", "Patient/pa", 200)
		})

		t.Run("cli errors", func(t *testing.T) {
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"optout"}, "usage: smartfhir optout"},
				{[]string{"optout", "add"}, "want exactly one argument"},
				{[]string{"optout", "add", "not an id"}, "is not a FHIR id"},
				{[]string{"optout", "remove", "never-opted"}, "patient never-opted has not opted out"},
				{[]string{"optout", "list", "extra"}, `unexpected argument "extra"`},
				{[]string{"optout", "frobnicate"}, `unknown optout subcommand "frobnicate"`},
			} {
				args := c.args
				if len(args) > 1 {
					args = append(append(slices.Clone(args), "--data-dir", e.dataDir), e.dbArgs...)
				}
				err := run(t.Context(), args, &strings.Builder{}, &strings.Builder{})
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("smartfhir %s: %v, want an error containing %q", strings.Join(args, " "), err, c.want)
				}
			}
		})
	})
}
