package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func fetchJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestCapabilitySecurityMatchesSMARTConfiguration checks that /fhir/metadata
// carries rest.security with the SMART-on-FHIR service coding and the
// oauth-uris extension (SMART App Launch 2.2 §"Conformance"), and that its
// URLs are those of the discovery document.
func TestCapabilitySecurityMatchesSMARTConfiguration(t *testing.T) {
	e := startAuth(t)
	var smartCfg map[string]any
	fetchJSON(t, e.base+"/fhir/.well-known/smart-configuration", &smartCfg)
	var cs struct {
		Rest []struct {
			Security struct {
				Service []struct {
					Coding []struct{ System, Code string }
				}
				Extension []struct {
					URL       string `json:"url"`
					Extension []struct {
						URL      string `json:"url"`
						ValueURI string `json:"valueUri"`
					} `json:"extension"`
				} `json:"extension"`
			} `json:"security"`
		} `json:"rest"`
	}
	fetchJSON(t, e.base+"/fhir/metadata", &cs)
	if len(cs.Rest) != 1 {
		t.Fatalf("rest = %+v", cs.Rest)
	}
	sec := cs.Rest[0].Security
	if len(sec.Service) != 1 || len(sec.Service[0].Coding) != 1 || sec.Service[0].Coding[0].Code != "SMART-on-FHIR" ||
		sec.Service[0].Coding[0].System != "http://terminology.hl7.org/CodeSystem/restful-security-service" {
		t.Errorf("security.service = %+v, want the SMART-on-FHIR coding", sec.Service)
	}
	got := map[string]string{}
	for _, ext := range sec.Extension {
		if ext.URL == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			for _, sub := range ext.Extension {
				got[sub.URL] = sub.ValueURI
			}
		}
	}
	for name, key := range map[string]string{"token": "token_endpoint", "authorize": "authorization_endpoint",
		"introspect": "introspection_endpoint", "revoke": "revocation_endpoint", "manage": "management_endpoint"} {
		if want, _ := smartCfg[key].(string); got[name] == "" || got[name] != want {
			t.Errorf("oauth-uris %s = %q, want %s %q", name, got[name], key, want)
		}
	}
}

func TestServeAuthFlags(t *testing.T) {
	t.Run("bad values are refused", func(t *testing.T) {
		for _, args := range [][]string{
			{"--access-token-lifetime", "10s"},
			{"--access-token-lifetime", "48h"},
			{"--access-token-lifetime", "2h", "--refresh-token-lifetime", "1h"},
			{"--token-cache-ttl", "-1s"},
			{"--token-cache-ttl", "5m"},
		} {
			m := NewMain(io.Discard, io.Discard)
			if err := m.ParseFlags(append(args, "--data-dir", t.TempDir())); err == nil {
				t.Errorf("ParseFlags(%q) accepted", args)
			}
		}
	})
	t.Run("lifetime and wildcard refusal reach the token endpoint", func(t *testing.T) {
		s := startServer(t, "--access-token-lifetime", "10m", "--refuse-wildcard-scopes", "--token-cache-ttl", "0s")
		e := &authEnv{t: t, base: s.BaseURL, dataDir: s.DataDir}
		c := e.cliJSON("clients", "add", "--name", "Backend", "--type", "confidential-symmetric", "--scopes", "system/*.rs", "--approve")
		post := func(scope string) (int, map[string]any) {
			req, _ := http.NewRequest("POST", e.base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c["client_id"], c["client_secret"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		if status, body := post("system/*.rs"); status != 400 || body["error"] != "invalid_scope" {
			t.Errorf("wildcard with --refuse-wildcard-scopes = %d %v, want invalid_scope", status, body)
		}
		if status, body := post("system/Patient.rs"); status != 200 {
			t.Errorf("specific scope = %d %v", status, body)
		}
		e.cli("users", "add", "--username", "pat", "--password", "correct horse", "--role", "patient", "--fhir-user", "Patient/85")
		pub := e.cliJSON("clients", "add", "--name", "Pub", "--type", "public", "--redirect-uri", e2eRedirect, "--scopes", "patient/Observation.rs", "--approve")
		cfg := e.oauthConfig(pub["client_id"], "", oauth2.AuthStyleInParams, "patient/Observation.rs")
		verifier := oauth2.GenerateVerifier()
		redirect := e.browse(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", e.base+"/fhir")), "pat", "correct horse", nil, "")
		tok, err := cfg.Exchange(context.Background(), redirect.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if got := tok.Extra("expires_in"); got != float64(600) {
			t.Errorf("expires_in with --access-token-lifetime 10m = %v, want 600", got)
		}
	})
}
