package main

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/reqctx"
)

// middleware wraps every request: a request id, recovery from panics, an
// access log line and the security headers. Bodies, query strings and
// credentials are never logged: they may hold PHI or secrets.
func (m *Main) middleware(next http.Handler) http.Handler {
	tls := strings.HasPrefix(m.BaseURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		ctx := reqctx.With(r.Context(), id, m.logger)
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=63072000")
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				reqctx.Logger(ctx).Error("panic serving request", "panic", v, "stack", string(debug.Stack()))
				if rec.status == 0 {
					h.Set("Content-Type", "application/fhir+json; charset=utf-8")
					rec.WriteHeader(http.StatusInternalServerError)
					rec.Write(fhir.ErrorOutcome(fhir.Errorf(fhir.Internal, "panic")))
				}
			}
			if m.logger.Enabled(ctx, slog.LevelInfo) {
				reqctx.Logger(ctx).Info("request", "method", r.Method, "path", r.URL.Path,
					"status", rec.code(), "bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Unwrap lets http.ResponseController reach the real writer (flush, deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// cors lets browser apps call the FHIR API from any origin (SMART App
// Launch 2.2, "Considerations for Cross-Origin Resource Sharing"). The API
// takes bearer tokens, never cookies, so a wildcard origin discloses
// nothing that the token does not already grant.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, If-Modified-Since, If-None-Exist, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "Location, Content-Location, ETag, Last-Modified, X-Request-Id")
		next.ServeHTTP(w, r)
	})
}
