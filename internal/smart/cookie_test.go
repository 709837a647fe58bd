package smart

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestSessionCookieFlags(t *testing.T) {
	for _, tt := range []struct {
		issuer     string
		wantSecure bool
	}{{"https://ehr.example", true}, {"http://localhost:8080", false}} {
		t.Run(tt.issuer, func(t *testing.T) {
			srv, err := New(Config{Issuer: tt.issuer, Store: newMemStore()})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			srv.Register(mux)
			id, _, err := srv.RegisterClient(context.Background(), ClientSpec{Name: "a", Type: Public, RedirectURIs: []string{redirect}, Scopes: "patient/*.rs", Approve: true})
			if err != nil {
				t.Fatal(err)
			}
			_, challenge := pkce("k")
			q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "scope": {"patient/*.rs"},
				"aud": {tt.issuer + "/fhir"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st"}}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "/oauth/authorize?"+q.Encode(), nil))
			if w.Code != http.StatusFound {
				t.Fatalf("authorize = %d %s", w.Code, w.Body)
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("cookies = %v", cookies)
			}
			c := cookies[0]
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tt.wantSecure {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Secure=%v, want true Lax %v", c.HttpOnly, c.SameSite, c.Secure, tt.wantSecure)
			}
		})
	}
}
