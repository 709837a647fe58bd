package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// CSRFField is the name of the hidden input carrying the CSRF token on
// every form.
const CSRFField = "csrf_token"

// SecurityHeaders sets the headers every HTML page carries: no framing
// (clickjacking, RFC 6749 §10.13), no caching of pages that hold CSRF
// tokens, no referrer leaking query strings, and a content security policy
// that allows only our own resources. Forms may post to this site and to
// the extra formAction sources: browsers apply form-action to the
// redirects that follow a form post too (CSP Level 3 §6.4.1; Chrome and
// Safari enforce it), so a page whose form ends in a 302 to an app must
// list the app's origin.
func SecurityHeaders(w http.ResponseWriter, formAction ...string) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	fa := "'self'"
	for _, src := range formAction {
		fa += " " + src
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action "+fa+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// Render writes the named page with its security headers, formAction
// being the sources its forms may lead to besides this site (see
// SecurityHeaders; FormActionSource makes one). The page is rendered into a
// buffer first, so that a template error becomes a plain 500 rather than
// half a page.
func Render(w http.ResponseWriter, status int, name string, data any, formAction ...string) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	SecurityHeaders(w, formAction...)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// SetCookie sets a session cookie: HttpOnly, SameSite=Lax (sent on the
// top-level redirect back from an app, never on cross-site posts), and
// Secure whenever the site is served over https. A zero expires deletes it.
func SetCookie(w http.ResponseWriter, name, value string, expires time.Time, secure bool) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// cspOrigin is what FormActionSource may put in a policy: a scheme and, for
// hierarchical URIs, a host and port, nothing that could end a directive.
var cspOrigin = regexp.MustCompile(`^[a-z][a-z0-9+.-]*:(//[A-Za-z0-9.\-]+(:[0-9]+)?|//\[[0-9A-Fa-f:.]+\](:[0-9]+)?)?$`)

// FormActionSource is the CSP source expression (CSP Level 3 §2.3.1)
// matching a redirect URI: its origin (https://app.example:8443), or its
// scheme alone for a private-use scheme (com.example.app:). ok is false
// for anything that is not safe to put into a policy.
func FormActionSource(redirectURI string) (src string, ok bool) {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return "", false
	}
	src = strings.ToLower(u.Scheme) + ":"
	if u.Host != "" {
		src += "//" + u.Host
	}
	if !cspOrigin.MatchString(src) {
		return "", false
	}
	return src, true
}

// CheckCSRF reports whether the token a form carried matches the session's.
func CheckCSRF(sessionToken, formToken string) bool {
	return sessionToken != "" && subtle.ConstantTimeCompare([]byte(sessionToken), []byte(formToken)) == 1
}
