package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Validator checks a resource before it is stored. It returns nil or a
// *fhir.Error with code Invalid whose issues name the offending elements.
type Validator interface{ Resource(raw []byte) error }

// Config is what the API needs; cmd/smartfhir fills it.
type Config struct {
	Base          string // absolute FHIR base URL, e.g. "http://localhost:8080/fhir" (no trailing slash)
	Store         store.Store
	Validator     Validator
	ResourceTypes []string      // the resource types served; any other type is 404
	NewID         func() string // server-assigned ids
	// Search is the search parameter registry: search, and the criteria of
	// conditional operations.
	Search       *search.Registry
	MaxBodyBytes int64 // request bodies above it are 413
	// DefaultCount and MaxCount bound the history page size (_count).
	DefaultCount, MaxCount int
	// Observe, when set, is told about every request (metrics).
	Observe  func(interaction string, status int, elapsed time.Duration)
	Software struct{ Name, Version string } // CapabilityStatement.software
	// Security, when set, is the CapabilityStatement's rest.security
	// element (for SMART, the oauth-uris extension and service coding).
	Security json.RawMessage
	// Auth, when set, checks the bearer token of every request but GET
	// [base]/metadata, and the access policy it answers governs the
	// request. Without it the API is open (tests, tools).
	Auth Authenticator
	// Audit, when set, receives one event per request but GET
	// [base]/metadata: who, which resources and patients, the outcome.
	Audit Auditor
	// AuditLog, when set, is served as the AuditEvent type: read and
	// search for administrators, and no writes. Issuer (the authorization
	// server's) names the namespace of client ids and usernames in them.
	AuditLog audit.Store
	Issuer   string
}

// API is the FHIR REST API. It is an http.Handler mounted at the path of
// Config.Base.
type API struct {
	cfg    Config
	prefix string // the path of Base, e.g. "/fhir"
	types  map[string]bool
	bundle *bundle.Processor
	caps   []byte // the CapabilityStatement, rendered once
}

// New returns the API for cfg.
func New(cfg Config) *API {
	cfg.Base = strings.TrimSuffix(cfg.Base, "/")
	if cfg.DefaultCount < 1 {
		cfg.DefaultCount = 50
	}
	if cfg.MaxCount < cfg.DefaultCount {
		cfg.MaxCount = cfg.DefaultCount
	}
	a := &API{cfg: cfg, types: make(map[string]bool, len(cfg.ResourceTypes))}
	if u, err := url.Parse(cfg.Base); err == nil {
		a.prefix = strings.TrimSuffix(u.Path, "/")
	}
	for _, t := range cfg.ResourceTypes {
		a.types[t] = true
	}
	a.bundle = &bundle.Processor{Store: cfg.Store, Exec: executor{a}, NewID: cfg.NewID, Match: executor{a}}
	a.caps = a.capabilityStatement(time.Now())
	return a
}

// The interactions as Config.Observe names them.
const (
	iRead            = "read"
	iVRead           = "vread"
	iUpdate          = "update"
	iPatch           = "patch"
	iDelete          = "delete"
	iHistoryInstance = "history-instance"
	iHistoryType     = "history-type"
	iHistorySystem   = "history-system"
	iCreate          = "create"
	iSearchType      = "search-type"
	iSearchSystem    = "search-system"
	iCapabilities    = "capabilities"
	iBatch           = "batch"
	iTransaction     = "transaction"
	iUnknown         = "unknown"
)

// call is one request on its way through a handler.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	query  url.Values // nil when the URL has no query
	pretty bool
	route
	// interaction is the name for Config.Observe; a handler may refine it
	// (batch or transaction is known only from the Bundle).
	interaction string
	// state is what the request's context carries (policy, audit trail).
	state state
}

// statusWriter remembers the status for Config.Observe.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ServeHTTP routes a request to its interaction and renders any error the
// interaction returns as an OperationOutcome.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	c := &call{w: sw, r: r}
	st := &c.state
	if a.cfg.Audit != nil {
		st.trail = &trail{base: a.cfg.Base}
	}
	if a.cfg.Auth != nil || a.cfg.Audit != nil {
		c.r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	}
	interaction, err := a.serve(c, st)
	if err != nil {
		a.writeError(c, err)
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if a.cfg.Observe != nil {
		a.cfg.Observe(interaction, status, time.Since(start))
	}
	if st.trail != nil && interaction != iCapabilities {
		c.interaction = interaction
		a.record(c, st, status)
	}
}

func (a *API) serve(c *call, st *state) (interaction string, err error) {
	if c.r.URL.RawQuery != "" {
		q, err := url.ParseQuery(c.r.URL.RawQuery)
		if err != nil {
			return iUnknown, fhir.Errorf(fhir.Invalid, "the query string is malformed: %v", err)
		}
		c.query = q
		c.pretty = q.Get("_pretty") == "true"
	}
	if err := negotiate(c); err != nil {
		return iUnknown, err
	}
	path, ok := strings.CutPrefix(c.r.URL.Path, a.prefix)
	if !ok {
		return iUnknown, fhir.Errorf(fhir.NotFound, "no FHIR endpoint at %s", c.r.URL.Path)
	}
	if a.cfg.Auth != nil && strings.Trim(path, "/") != "metadata" {
		if err := a.authenticate(c, st); err != nil {
			// The audit record of the refusal names what was asked for.
			c.route, _ = a.parseRoute(path)
			return iUnknown, err
		}
	}
	c.route, err = a.parseRoute(path)
	if err != nil {
		return iUnknown, err
	}
	var h handlerFunc
	var allow string
	if c.typ == "AuditEvent" && a.cfg.AuditLog != nil {
		h, interaction, allow = a.auditHandler(c.route, c.r.Method)
	} else {
		h, interaction, allow = a.handler(c.route, c.r.Method)
	}
	if h == nil && c.typ == "AuditEvent" && a.cfg.AuditLog != nil {
		c.w.Header().Set("Allow", allow)
		return iUnknown, errAuditWrite()
	}
	if h == nil {
		c.w.Header().Set("Allow", allow)
		return iUnknown, fhir.Errorf(fhir.MethodNotAllowed, "%s is not allowed on %s (allowed: %s)", c.r.Method, c.r.URL.Path, allow)
	}
	c.interaction = interaction
	err = h(a, c)
	return c.interaction, err
}

type handlerFunc func(a *API, c *call) error

// handler picks the interaction for a route and method; allow lists the
// methods of the route when the method is not one of them.
func (a *API) handler(rt route, method string) (h handlerFunc, interaction, allow string) {
	get := method == http.MethodGet || method == http.MethodHead
	switch rt.kind {
	case routeRoot:
		switch {
		case method == http.MethodPost:
			return (*API).batchHandler, iBatch, ""
		case get:
			return (*API).searchSystem, iSearchSystem, ""
		}
		return nil, "", "GET, HEAD, POST"
	case routeMetadata:
		if get {
			return (*API).capabilities, iCapabilities, ""
		}
		return nil, "", "GET, HEAD"
	case routeHistorySystem:
		if get {
			return (*API).historySystem, iHistorySystem, ""
		}
		return nil, "", "GET, HEAD"
	case routeType:
		switch {
		case method == http.MethodPost:
			return (*API).create, iCreate, ""
		case get:
			return (*API).searchType, iSearchType, ""
		case method == http.MethodPut:
			return (*API).conditionalUpdate, iUpdate, ""
		case method == http.MethodDelete:
			return (*API).conditionalDelete, iDelete, ""
		}
		return nil, "", "GET, HEAD, POST, PUT, DELETE"
	case routeSearch:
		if method == http.MethodPost || get {
			return (*API).searchType, iSearchType, ""
		}
		return nil, "", "GET, HEAD, POST"
	case routeHistoryType:
		if get {
			return (*API).historyType, iHistoryType, ""
		}
		return nil, "", "GET, HEAD"
	case routeInstance:
		switch method {
		case http.MethodGet, http.MethodHead:
			return (*API).read, iRead, ""
		case http.MethodPut:
			return (*API).update, iUpdate, ""
		case http.MethodPatch:
			return (*API).patch, iPatch, ""
		case http.MethodDelete:
			return (*API).delete, iDelete, ""
		}
		return nil, "", "GET, HEAD, PUT, PATCH, DELETE"
	case routeHistoryInstance:
		if get {
			return (*API).historyInstance, iHistoryInstance, ""
		}
		return nil, "", "GET, HEAD"
	case routeVersion:
		if get {
			return (*API).vread, iVRead, ""
		}
		return nil, "", "GET, HEAD"
	}
	return nil, "", ""
}

// supportedTypes is the sorted list of served types.
func (a *API) supportedTypes() []string {
	ts := make([]string, 0, len(a.types))
	for t := range a.types {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}
