package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// chromium finds a Chromium binary: $CHROMIUM, /usr/bin/chromium, or one
// on the PATH.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowserStandaloneLaunch drives the login and consent pages in a real
// headless Chromium, which enforces the pages' Content-Security-Policy,
// form-action included on the redirect that follows the consent form: the
// plain-HTTP end-to-end tests cannot see a browser refusing that 302.
func TestBrowserStandaloneLaunch(t *testing.T) {
	exe := chromium()
	if exe == "" {
		t.Skip("no Chromium binary (set CHROMIUM, or install chromium); the browser test needs one")
	}
	e := startAuth(t)
	fhirBase := e.base + "/fhir"

	// The app: its redirect URI is served, so the browser really lands there.
	arrived := make(chan *url.URL, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cb" {
			select {
			case arrived <- r.URL:
			default:
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!DOCTYPE html><title>App</title><p id=done>back in the app</p>"))
	}))
	t.Cleanup(app.Close)
	redirectURI := app.URL + "/cb" // http://127.0.0.1:PORT/cb

	e.cli("users", "add", "--username", "pat", "--password", "correct horse", "--role", "patient", "--fhir-user", "Patient/85")
	c := e.cliJSON("clients", "add", "--name", "Growth Chart", "--type", "confidential-symmetric", "--redirect-uri", redirectURI,
		"--scopes", "openid fhirUser launch/patient offline_access patient/*.rs", "--approve")
	cfg := &oauth2.Config{ClientID: c["client_id"], ClientSecret: c["client_secret"], RedirectURL: redirectURI,
		Scopes:   []string{"openid", "fhirUser", "launch/patient", "offline_access", "patient/Observation.rs", "patient/Patient.rs"},
		Endpoint: oauth2.Endpoint{AuthURL: e.base + "/oauth/authorize", TokenURL: e.base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-xyz", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", fhirBase))

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
		chromedp.WindowSize(900, 1100),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	shots := t.TempDir()
	save := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644); err != nil {
			t.Error(err)
		}
		// A copy outside the test's directory, to look at by hand.
		_ = os.WriteFile(filepath.Join(os.TempDir(), "smart-"+name+".png"), b, 0o644)
	}
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("login page", chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "pat"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "correct horse"),
	))
	login, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("login screenshot", err)
	save("login", login)
	step("consent page", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[name="decision"][value="allow"]`)),
		// The user refuses one of the scopes.
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="patient/Patient.rs"]`)),
	))
	consentText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	step("consent text", err)
	consent, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("consent screenshot", err)
	save("consent", consent)
	// A browser that refuses the redirect (CSP form-action) stays on the
	// consent page: fail in seconds rather than at the overall deadline.
	allowCtx, cancelAllow := context.WithTimeout(ctx, 15*time.Second)
	defer cancelAllow()
	step("allow, then land in the app", chromedp.Do(allowCtx,
		chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID(`done`)),
	))
	finalURL, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	for _, want := range []string{"Growth Chart", "pat", "Read and search observations (lab results, vital signs and more) of the selected patient", "offline"} {
		if !strings.Contains(consentText, want) {
			t.Errorf("consent page lacks %q: %q", want, consentText)
		}
	}

	var got *url.URL
	select {
	case got = <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatalf("the app's redirect URI was never reached; browser at %s", finalURL)
	}
	if !strings.HasPrefix(finalURL, redirectURI+"?") {
		t.Errorf("browser ended at %s, want %s", finalURL, redirectURI)
	}
	if got.Query().Get("state") != "state-xyz" || got.Query().Get("code") == "" {
		t.Fatalf("redirect = %s, want a code and state-xyz", got)
	}
	tok, err := cfg.Exchange(context.Background(), got.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	scope, _ := tok.Extra("scope").(string)
	if strings.Contains(scope, "patient/Patient.rs") || !strings.Contains(scope, "patient/Observation.rs") || tok.Extra("patient") != "85" {
		t.Errorf("granted scope %q patient %v, want Observation but not the cleared Patient scope", scope, tok.Extra("patient"))
	}
}
