// Command login signs a user in to a running smartfhir through a SMART
// standalone launch (authorization code with PKCE, the login and consent
// forms posted as a browser would) and prints the access token: what
// bench/run.sh uses to load the FHIR API with a patient's token.
//
//	go run ./bench/login -base http://127.0.0.1:18080 -client-id ID -client-secret SECRET \
//	    -user pat -password 'correct horse' -scope 'launch/patient patient/*.rs' [-patient ID]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"

	"golang.org/x/oauth2"
)

func main() {
	base := flag.String("base", "http://127.0.0.1:8080", "the server's base URL (the issuer)")
	id := flag.String("client-id", "", "a confidential client's id; its redirect URI must be -redirect")
	secret := flag.String("client-secret", "", "the client's secret")
	redirect := flag.String("redirect", "http://127.0.0.1:9/cb", "the client's registered redirect URI (never contacted)")
	user := flag.String("user", "", "username")
	password := flag.String("password", "", "password")
	scope := flag.String("scope", "launch/patient patient/*.rs", "scopes to ask for (all are granted)")
	patient := flag.String("patient", "", "the patient to pick when the user has several")
	flag.Parse()
	tok, err := login(*base, *id, *secret, *redirect, *user, *password, *scope, *patient)
	if err != nil {
		fmt.Fprintln(os.Stderr, "login:", err)
		os.Exit(1)
	}
	fmt.Println(tok)
}

var (
	csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)
	scopeBox  = regexp.MustCompile(`name="scope" value="([^"]*)"`)
)

func login(base, id, secret, redirect, user, password, scope, patient string) (string, error) {
	cfg := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Scopes: strings.Fields(scope),
		Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("bench", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", base+"/fhir"))
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	// Follow redirects on the server; stop at the one back to the app.
	c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), base) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	page := func(resp *http.Response, err error) (*http.Response, string, error) {
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	post := func(path, body string, fields url.Values) (*http.Response, string, error) {
		m := csrfField.FindStringSubmatch(body)
		if m == nil {
			return nil, "", fmt.Errorf("no form with a CSRF token on the page before %s", path)
		}
		fields.Set("csrf_token", html.UnescapeString(m[1]))
		return page(c.Post(base+path, "application/x-www-form-urlencoded", strings.NewReader(fields.Encode())))
	}
	resp, body, err := page(c.Get(authURL))
	if err != nil {
		return "", err
	}
	if resp.Request.URL.Path != "/login" {
		return "", fmt.Errorf("authorize answered %d at %s (%s)", resp.StatusCode, resp.Request.URL.Path, resp.Header.Get("Location"))
	}
	resp, body, err = post("/login", body, url.Values{"username": {user}, "password": {password}})
	if err != nil {
		return "", err
	}
	if resp.Request.URL.Path != "/consent" {
		return "", errors.New("the login failed (wrong username or password?)")
	}
	consent := url.Values{"decision": {"allow"}}
	for _, m := range scopeBox.FindAllStringSubmatch(body, -1) {
		consent.Add("scope", html.UnescapeString(m[1]))
	}
	if patient != "" {
		consent.Set("patient", patient)
	}
	resp, _, err = post("/consent", body, consent)
	if err != nil {
		return "", err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("consent answered %d without a code (%s)", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}
