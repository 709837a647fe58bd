package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testServer is a real smartfhir server run in-process on a free port.
type testServer struct {
	Main    *Main
	BaseURL string // e.g. http://127.0.0.1:PORT
	DataDir string
	DB      string // the --db value; "" for the default SQLite file
	logs    *syncBuffer
}

// startServer runs `smartfhir serve` on 127.0.0.1:0 with a fresh data
// directory; extraArgs are added to the command line (e.g. "--db", url).
func startServer(t *testing.T, extraArgs ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	logs := &syncBuffer{}
	m := NewMain(logs, logs)
	args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", dir, "--log-level", "warn"}, extraArgs...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatalf("ParseFlags(%q): %v", args, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	s := &testServer{Main: m, BaseURL: m.BaseURL, DataDir: dir, DB: m.DB.DB, logs: logs}
	// Requests of the test to /fhir carry a token of this server with full
	// access (see TestMain).
	ts := s.backendClient(t, "system/*.cruds").TokenSource(context.Background())
	if tt, ok := http.DefaultTransport.(*tokenTransport); ok {
		t.Cleanup(tt.serve(s.BaseURL, ts))
	}
	return s
}

// backend is a database a test can run the server on.
type backend struct {
	name string
	args func(t *testing.T) []string // the --db flag, or nothing for SQLite
}

// backends lists SQLite always and PostgreSQL when SMARTFHIR_TEST_POSTGRES is set.
func backends() []backend {
	b := []backend{{"sqlite", func(*testing.T) []string { return nil }}}
	if os.Getenv("SMARTFHIR_TEST_POSTGRES") != "" {
		b = append(b, backend{"postgres", func(t *testing.T) []string { return []string{"--db", postgresDB(t)} }})
	}
	return b
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, dbArgs []string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.args(t)) })
	}
	if os.Getenv("SMARTFHIR_TEST_POSTGRES") == "" {
		t.Log("PostgreSQL not tested: set SMARTFHIR_TEST_POSTGRES=postgres://…")
	}
}

// postgresDB returns a URL of the test database whose search_path is a
// fresh schema, dropped when the test ends; it skips the test when
// SMARTFHIR_TEST_POSTGRES is unset.
func postgresDB(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SMARTFHIR_TEST_POSTGRES")
	if base == "" {
		t.Skip("SMARTFHIR_TEST_POSTGRES is not set")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "e2e_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to %s: %v", redact(base), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"serve", "--nope"}, "flag provided but not defined"},
		{"bad db", []string{"serve", "--db", "mysql://x"}, "want sqlite:PATH or a postgres:// URL"},
		{"empty sqlite path", []string{"migrate", "--db", "sqlite:"}, "needs a path"},
		{"tls half", []string{"serve", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{"bad base url", []string{"serve", "--base-url", "ftp://x"}, "--base-url"},
		{"bad count", []string{"serve", "--default-count", "0"}, "--default-count"},
		{"negative read cache", []string{"serve", "--read-cache-mb", "-1"}, "--read-cache-mb -1"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, "--log-level"},
		{"stray argument", []string{"migrate", "extra"}, `unexpected argument "extra"`},
		{"version args", []string{"version", "x"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestEnvironmentVariablesSetFlags(t *testing.T) {
	t.Setenv("SMARTFHIR_DEFAULT_COUNT", "7")
	t.Setenv("SMARTFHIR_BASE_URL", "https://fhir.example.org/")
	m := NewMain(&bytes.Buffer{}, &bytes.Buffer{})
	if err := m.ParseFlags([]string{"--default-count", "9"}); err != nil {
		t.Fatal(err)
	}
	if got, want := m.DefaultCount, 9; got != want {
		t.Errorf("flag given on the command line: DefaultCount = %d, want %d", got, want)
	}
	if got, want := m.BaseURL, "https://fhir.example.org"; got != want {
		t.Errorf("BaseURL from environment = %q, want %q", got, want)
	}
	t.Setenv("SMARTFHIR_MAX_COUNT", "lots")
	if err := NewMain(&bytes.Buffer{}, &bytes.Buffer{}).ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "SMARTFHIR_MAX_COUNT") {
		t.Errorf("bad environment value: err = %v, want one naming SMARTFHIR_MAX_COUNT", err)
	}
}

// TestNewID: server-assigned ids are version-7 UUIDs (RFC 9562 §5.7), so
// that ids made close in time sort close together (the index pages a bulk
// load writes), and they do not repeat.
func TestNewID(t *testing.T) {
	before := time.Now().UnixMilli()
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := newID()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("newID() = %q, want a version-7 UUID", id)
		}
		raw, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
		if err != nil {
			t.Fatalf("newID() = %q: %v", id, err)
		}
		var ms int64
		for _, b := range raw[:6] {
			ms = ms<<8 | int64(b)
		}
		if now := time.Now().UnixMilli(); ms < before || ms > now {
			t.Fatalf("newID() = %q holds %d ms, want between %d and %d", id, ms, before, now)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
		if id[:13] < prev {
			t.Fatalf("newID() = %q sorts before the earlier %q's time", id, prev)
		}
		prev = id[:13]
	}
}
