package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir/spec"
	"smartfhir/internal/rest"
	"smartfhir/internal/search"
	"smartfhir/internal/smart"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/validate"
)

// Main is the server: flags in, a listening HTTP server out. Tests run the
// real thing with Addr "127.0.0.1:0" and a temporary data directory.
type Main struct {
	Addr         string
	BaseURL      string
	DB           dbFlags
	TLSCert      string
	TLSKey       string
	MaxBodyBytes int64
	DefaultCount int
	MaxCount     int
	ReadCacheMB  int
	LogLevel     string
	LogFormat    string
	Auth         authSettings

	Stdout, Stderr io.Writer

	logger *slog.Logger
	store  *sqlstore.DB
	auth   *smart.Server
	audit  *audit.Log

	stopSweep context.CancelFunc
	sweepDone chan struct{}
	ln        net.Listener
	server    *http.Server
	served    chan error
}

// NewMain returns a Main with the defaults of the serve command.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Stdout: stdout, Stderr: stderr}
}

// ParseFlags reads the serve command's flags and environment variables.
func (m *Main) ParseFlags(args []string) error {
	fs := newFlagSet("serve", m.Stderr)
	fs.StringVar(&m.Addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&m.BaseURL, "base-url", "", "public base URL of the server (default http://localhost:PORT, https with TLS)")
	m.DB.register(fs)
	fs.StringVar(&m.TLSCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS when given with --tls-key")
	fs.StringVar(&m.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.Int64Var(&m.MaxBodyBytes, "max-body-bytes", 16<<20, "largest request body accepted (413 above it)")
	fs.IntVar(&m.DefaultCount, "default-count", 50, "page size when a request gives no _count")
	fs.IntVar(&m.MaxCount, "max-count", 1000, "largest page size a request may ask for")
	fs.IntVar(&m.ReadCacheMB, "read-cache-mb", 64, "memory in MB for the bodies of search pages, and on SQLite as much again for resources read by id, served again until the database changes (0: none)")
	fs.StringVar(&m.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&m.LogFormat, "log-format", "text", "text or json")
	m.Auth.register(fs)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := m.Auth.check(); err != nil {
		return err
	}
	if m.MaxBodyBytes < 1024 {
		return fmt.Errorf("--max-body-bytes %d is too small (at least 1024)", m.MaxBodyBytes)
	}
	if m.DefaultCount < 1 || m.MaxCount < m.DefaultCount {
		return fmt.Errorf("need 1 ≤ --default-count (%d) ≤ --max-count (%d)", m.DefaultCount, m.MaxCount)
	}
	if m.ReadCacheMB < 0 || m.ReadCacheMB > 1<<20 {
		return fmt.Errorf("--read-cache-mb %d: want 0 (no cache) to %d", m.ReadCacheMB, 1<<20)
	}
	m.DB.readCache = m.ReadCacheMB << 20
	if m.BaseURL != "" {
		u, err := url.Parse(m.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--base-url %q: want an absolute http(s) URL without query, e.g. https://fhir.example.org", m.BaseURL)
		}
		m.BaseURL = strings.TrimSuffix(m.BaseURL, "/")
	}
	if _, _, err := m.DB.resolve(); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", m.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch m.LogFormat {
	case "text":
		m.logger = slog.New(slog.NewTextHandler(m.Stderr, opts))
	case "json":
		m.logger = slog.New(slog.NewJSONHandler(m.Stderr, opts))
	default:
		return fmt.Errorf("--log-format %q: want text or json", m.LogFormat)
	}
	return nil
}

// Run opens the database, applies migrations, starts listening and serves in
// the background. It returns once the server accepts connections.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.logger == nil {
		return errors.New("Run before ParseFlags")
	}
	var tlsConfig *tls.Config
	if m.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(m.TLSCert, m.TLSKey)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		// TLS 1.2 at least; Go negotiates 1.3 whenever the client can.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	// Listen first: the base URL (which the search index needs to tell
	// local references from others) may depend on the port.
	if m.ln, err = net.Listen("tcp", m.Addr); err != nil {
		return fmt.Errorf("listening on %s: %w", m.Addr, err)
	}
	defer func() {
		if err != nil {
			m.ln.Close()
		}
	}()
	if m.BaseURL == "" {
		m.BaseURL = defaultBaseURL(m.ln.Addr().(*net.TCPAddr), tlsConfig != nil)
	}
	if m.DB.search, err = search.NewRegistry(search.Config{Base: m.BaseURL + "/fhir"}); err != nil {
		return fmt.Errorf("compiling the search parameters: %w", err)
	}
	if m.store, err = m.DB.open(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			m.store.Close()
		}
	}()
	// Index data written before this parameter set (a no-op when current).
	if n, err := m.store.Reindex(ctx, false); err != nil {
		return fmt.Errorf("re-indexing for search: %w", err)
	} else if n > 0 {
		m.logger.Info("re-indexed for search", "resources", n)
	}
	handler, err := m.handler()
	if err != nil {
		return err
	}
	m.server = &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.served = make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			m.served <- m.server.ServeTLS(m.ln, "", "")
		} else {
			m.served <- m.server.Serve(m.ln)
		}
	}()
	m.logger.Info("serving", "addr", m.ln.Addr().String(), "base_url", m.BaseURL, "db", m.DB.describe(), "tls", tlsConfig != nil)
	return nil
}

// defaultBaseURL is http(s)://localhost:PORT, or the listen IP when the
// server listens on one specific address.
func defaultBaseURL(a *net.TCPAddr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host := "localhost"
	if !a.IP.IsUnspecified() && !a.IP.IsLoopback() {
		host = a.IP.String()
	} else if a.IP.IsLoopback() && a.IP.To4() != nil && !a.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		host = a.IP.String()
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(a.Port)))
}

// handler wires the HTTP routes and the middleware around them.
func (m *Main) handler() (http.Handler, error) {
	metrics := newMetrics()
	mux := http.NewServeMux()
	auth, err := mountAuth(mux, m.store, m.DB.search, m.BaseURL, m.logger, &m.Auth)
	if err != nil {
		return nil, err
	}
	m.auth = auth
	m.sweepDone = make(chan struct{})
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	m.stopSweep = stopSweep
	go m.sweep(sweepCtx)
	fhirBase := m.BaseURL + "/fhir"
	m.audit = audit.New(m.store.Audit(), m.logger, audit.Options{})
	metrics.auditStats(m.audit)
	metrics.readCacheStats(m.store)
	api := rest.New(rest.Config{
		Base:          fhirBase,
		Store:         m.store,
		Search:        m.DB.search,
		Validator:     validator{},
		ResourceTypes: spec.ResourceTypes(),
		NewID:         newID,
		MaxBodyBytes:  m.MaxBodyBytes,
		DefaultCount:  m.DefaultCount,
		MaxCount:      m.MaxCount,
		Observe:       metrics.observe,
		Software:      struct{ Name, Version string }{"smartfhir", version},
		Security:      auth.CapabilitySecurity(),
		Auth:          fhirAuth{auth},
		Audit:         m.audit,
		AuditLog:      m.store.Audit(),
		Issuer:        m.BaseURL,
	})
	mux.Handle("/fhir/", cors(api))
	mux.Handle("/fhir", cors(api)) // POST /fhir is batch/transaction
	mux.Handle("GET /healthz", metrics.instrument("healthz", http.HandlerFunc(m.healthz)))
	mux.Handle("GET /metrics", metrics.instrument("metrics", metrics.handler()))
	return m.middleware(mux), nil
}

// sweepEvery is how often expired codes, tokens, launches and sessions are
// deleted.
const sweepEvery = 10 * time.Minute

// analyzeEvery is how many sweeps pass between statistics refreshes (an
// hour).
const analyzeEvery = 6

func (m *Main) sweep(ctx context.Context) {
	defer close(m.sweepDone)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for tick := 0; ; tick++ {
		if err := m.auth.Sweep(ctx); err != nil && ctx.Err() == nil {
			m.logger.Warn("sweeping expired authorization data", "err", err)
		}
		// Search plans rest on the planner's statistics: refresh them at
		// start and every analyzeEvery ticks.
		if tick%analyzeEvery == 0 {
			if err := m.store.RefreshStatistics(ctx); err != nil && ctx.Err() == nil {
				m.logger.Warn("refreshing planner statistics", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// validator adapts the validate package to rest.Validator.
type validator struct{}

func (validator) Resource(raw []byte) error { return validate.Resource(raw) }

func (m *Main) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := m.store.Ping(ctx); err != nil {
		m.logger.Warn("health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"unavailable","database":"down"}`)
		return
	}
	io.WriteString(w, `{"status":"ok"}`)
}

// Close stops accepting connections, lets requests in flight finish (up to
// 15 s), and closes the database.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := <-m.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.stopSweep != nil {
		m.stopSweep()
		<-m.sweepDone
	}
	if m.audit != nil {
		// Requests have ended: write the audit records still queued.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.audit.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit log: %w", err))
		}
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain(stdout, stderr)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down")
	case err := <-m.served:
		m.served <- err // Close reads it again
	}
	return m.Close()
}

// newID returns a version-7 UUID (RFC 9562 §5.7), the form of
// server-assigned ids: 48 bits of Unix milliseconds, then 74 random bits.
func newID() string {
	var b [16]byte
	rand.Read(b[6:]) // never fails (crypto/rand, Go ≥ 1.24)
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	const hexdig = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexdig[c>>4], hexdig[c&0xf])
	}
	return string(out)
}
