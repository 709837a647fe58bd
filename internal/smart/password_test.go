package smart

import (
	"crypto/rand"
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword(rand.Reader, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string", h)
	}
	h2, _ := HashPassword(rand.Reader, "correct horse")
	if h == h2 {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, encoded, password string
		want                    bool
	}{
		{"right password", h, "correct horse", true},
		{"wrong password", h, "correct horsf", false},
		{"empty password", h, "", false},
		{"not argon2id", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse", false},
		{"truncated", h[:len(h)-10], "correct horse", false},
		{"absurd memory", strings.Replace(h, "m=19456", "m=99999999", 1), "correct horse", false},
		{"garbage", "$argon2id$v=19$m=1,t=1,p=1$!!$!!", "x", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkPassword(tt.encoded, tt.password); got != tt.want {
				t.Errorf("checkPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRedirectAllowed(t *testing.T) {
	reg := []string{"https://app.example/cb", "http://127.0.0.1/native", "http://[::1]:8000/v6", "com.example.app:/cb"}
	tests := []struct {
		uri  string
		want bool
	}{
		{"https://app.example/cb", true},
		{"https://app.example/cb/", false},
		{"https://app.example/cb?x=1", false},
		{"https://APP.example/cb", false},
		{"http://127.0.0.1:51234/native", true},
		{"http://127.0.0.1/native", true},
		{"http://127.0.0.1:51234/other", false},
		{"http://localhost:51234/native", false},
		{"http://[::1]:9/v6", true},
		{"com.example.app:/cb", true},
		{"com.example.app:/other", false},
		{"https://127.0.0.1:51234/native", false},
	}
	for _, tt := range tests {
		if got := redirectAllowed(reg, tt.uri); got != tt.want {
			t.Errorf("redirectAllowed(%q) = %v, want %v", tt.uri, got, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no store":        {Issuer: "https://a.example"},
		"relative issuer": {Issuer: "/x", Store: newMemStore()},
		"issuer query":    {Issuer: "https://a.example?x=1", Store: newMemStore()},
		"long code":       {Issuer: "https://a.example", Store: newMemStore(), CodeLifetime: 10 * 60e9},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(cfg); err == nil {
				t.Errorf("New(%+v) succeeded", cfg)
			}
		})
	}
}
