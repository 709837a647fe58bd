package web

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"net/http"
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
// that allows only our own resources.
func SecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// Render writes the named page with its security headers. The page is
// rendered into a buffer first, so that a template error becomes a plain
// 500 rather than half a page.
func Render(w http.ResponseWriter, status int, name string, data any) error {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	SecurityHeaders(w)
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

// CheckCSRF reports whether the token a form carried matches the session's.
func CheckCSRF(sessionToken, formToken string) bool {
	return sessionToken != "" && subtle.ConstantTimeCompare([]byte(sessionToken), []byte(formToken)) == 1
}
