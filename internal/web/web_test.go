package web

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRenderEscapesAndSetsHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	err := Render(w, 401, "login", map[string]any{"ClientName": "<script>x</script>", "CSRF": "tok", "Error": "bad", "Username": "u"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Code != 401 {
		t.Errorf("status = %d, want 401", w.Code)
	}
	body := w.Body.String()
	if strings.Contains(body, "<script>x") {
		t.Errorf("client name not escaped: %s", body)
	}
	for _, want := range []string{`name="username"`, `name="password"`, `name="csrf_token" value="tok"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP lacks frame-ancestors")
	}
}

func TestRenderUnknownPageFails(t *testing.T) {
	w := httptest.NewRecorder()
	if err := Render(w, 200, "nope", nil); err == nil {
		t.Fatal("want an error")
	}
	if w.Code != 500 {
		t.Errorf("status = %d, want 500", w.Code)
	}
}

func TestSetCookie(t *testing.T) {
	tests := []struct {
		name   string
		secure bool
	}{{"http site", false}, {"https site", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			SetCookie(w, "s", "v", time.Now().Add(time.Hour), tt.secure)
			c := w.Result().Cookies()[0]
			if !c.HttpOnly || c.SameSite != 2 || c.Secure != tt.secure {
				t.Errorf("cookie = %+v, want HttpOnly, SameSite=Lax, Secure=%v", c, tt.secure)
			}
		})
	}
}

func TestCheckCSRF(t *testing.T) {
	if CheckCSRF("", "") {
		t.Error("empty session token accepted")
	}
	if CheckCSRF("abc", "abd") {
		t.Error("wrong token accepted")
	}
	if !CheckCSRF("abc", "abc") {
		t.Error("right token refused")
	}
}

func TestFormActionSource(t *testing.T) {
	for _, tt := range []struct {
		uri, want string
		ok        bool
	}{
		{"https://app.example/cb?x=1", "https://app.example", true},
		{"http://127.0.0.1:54321/cb", "http://127.0.0.1:54321", true},
		{"http://[::1]:8080/cb", "http://[::1]:8080", true},
		{"com.example.app:/callback", "com.example.app:", true},
		{"https://app.example;script-src *", "", false},
		{"not a uri", "", false},
	} {
		got, ok := FormActionSource(tt.uri)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FormActionSource(%q) = %q, %v; want %q, %v", tt.uri, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRenderAddsFormActionSources(t *testing.T) {
	w := httptest.NewRecorder()
	if err := Render(w, 200, "error", map[string]string{"Title": "t", "Message": "m"}, "https://app.example"); err != nil {
		t.Fatal(err)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example;") {
		t.Errorf("CSP = %q, want the extra form-action source", csp)
	}
}
