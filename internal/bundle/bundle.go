package bundle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/reqctx"
	"smartfhir/internal/store"
)

// Request is one entry's request, after reference resolution.
type Request struct {
	// Index is the entry's position in Bundle.entry.
	Index int
	// Method is GET, HEAD, POST, PUT, PATCH or DELETE.
	Method string
	// URL is entry.request.url: relative to the base ("Patient/1",
	// "Patient", "Patient/1/_history/2") or absolute.
	URL string
	// Resource is entry.resource with references to other entries
	// rewritten; for PATCH, a Binary holding the patch document.
	Resource []byte
	// ID is the id assigned up front to the resource of a POST entry.
	ID string
	// The conditional headers of entry.request.
	IfMatch, IfNoneMatch, IfModifiedSince, IfNoneExist string
	// Prepared is what the Executor's Prepare returned, before the unit of
	// work, for the resource this entry was expected to hold once its
	// references are resolved; nil when nothing was prepared. It is a
	// guess: the executor may use it only for exactly the bytes it was
	// prepared from.
	Prepared any
}

// Result is what executing one entry produced.
type Result struct {
	Status       int
	Location     string // entry.response.location, e.g. "Patient/1/_history/1"
	FullURL      string // entry.fullUrl of the response entry, may be empty
	ETag         string
	LastModified time.Time
	// Resource is the resource the interaction returns (for a GET, what
	// was read), nil when there is none.
	Resource []byte
}

// Executor executes one entry inside tx.
type Executor interface {
	Execute(ctx context.Context, tx store.Tx, req *Request) (*Result, error)
}

// Preparer is an Executor that can do an entry's work that depends only on
// its resource — parsing, validation, index extraction — before the unit
// of work, so that the unit (which holds SQLite's only writer) does not.
// Prepare must be safe for concurrent use; its answer comes back in
// Request.Prepared. It returns nil when it prepared nothing.
type Preparer interface {
	Prepare(req *Request) any
}

// Return is the client's Prefer: return= choice (http.html §3.1.0.8.3),
// applied to every entry of the response.
type Return int

// The Prefer: return values.
const (
	Representation Return = iota
	Minimal
	OperationOutcome
)

// Processor runs batch and transaction Bundles.
type Processor struct {
	Store store.Store
	Exec  Executor
	// NewID makes server-assigned ids.
	NewID func() string
	// Match resolves conditional references and the ifNoneExist of POST
	// entries; nil makes conditional references NotSupported.
	Match Matcher
}

// Options change how Run processes a Bundle.
type Options struct {
	// SkipInvalid makes a transaction that fails because an entry is
	// invalid run again without that entry, and so on, instead of failing
	// as a whole; the skipped entries are reported in Outcome.Errs, and an
	// entry that refers to a skipped one is skipped too. It is for bulk
	// loading (smartfhir import --skip-invalid), never for POST [base],
	// where a transaction is all or nothing.
	SkipInvalid bool
	// Prepared, when set, is called once the Bundle is parsed and its
	// entries prepared, before the first unit of work; it is not called
	// when the Bundle fails before that. What comes after it mostly waits
	// for the store (SQLite has one writer), so a bulk loader uses it to
	// start preparing its next Bundle.
	Prepared func()
}

// Outcome is what Run did with a Bundle.
type Outcome struct {
	// Kind is "batch" or "transaction" as soon as the Bundle says so, ""
	// before.
	Kind string
	// Results holds each entry's result, by entry index; nil for an entry
	// that failed or was skipped.
	Results []*Result
	// Errs holds, by entry index, why a batch entry failed or why a
	// transaction entry was skipped (Options.SkipInvalid).
	Errs []error
	// Methods holds each entry's request.method, by entry index ("" for an
	// entry without a request): a 200 means an update for PUT, but an
	// existing match for a conditional POST.
	Methods []string
}

// EntryError is the failure of one entry of a Bundle. It wraps a
// *fhir.Error whose diagnostics name the entry (or, for an internal
// error, the error itself).
type EntryError struct {
	Index int
	err   error
	// cause is the entry's own error when err restates it with the entry
	// named (entryError): it stays in the chain for errors.As, behind err.
	cause error
}

func (e *EntryError) Error() string { return e.err.Error() }
func (e *EntryError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.err}
	}
	return []error{e.err, e.cause}
}

// conflictRetries is how often a unit of work that lost a version race
// (and named no If-Match) is tried again.
const conflictRetries = 5

// Process runs a batch or transaction Bundle and returns the response
// Bundle. kind is "batch" or "transaction" as soon as the Bundle says so
// (for metrics), "" before. A Bundle-level problem, or any failing entry of
// a transaction, is returned as an error; a failing batch entry is reported
// in its response entry.
func (p *Processor) Process(ctx context.Context, body []byte, ret Return) (kind string, resp []byte, err error) {
	out, err := p.Run(ctx, body, Options{})
	if err != nil {
		return out.Kind, nil, err
	}
	typ := "batch-response"
	if out.Kind == "transaction" {
		typ = "transaction-response"
	}
	resp, err = p.response(typ, out.Results, out.Errs, ret)
	return out.Kind, resp, err
}

// Run runs a batch or transaction Bundle (http.html §3.1.0.11) and returns
// what each entry did. A Bundle-level problem, or a failing entry of a
// transaction, is returned as an error (an *EntryError for an entry); the
// Outcome is never nil.
func (p *Processor) Run(ctx context.Context, body []byte, opts Options) (*Outcome, error) {
	b, err := parse(body)
	out := &Outcome{}
	if b != nil {
		out.Kind = b.kind
	}
	if err != nil {
		return out, err
	}
	out.Results = make([]*Result, len(b.entries))
	out.Errs = make([]error, len(b.entries))
	out.Methods = make([]string, len(b.entries))
	for i, e := range b.entries {
		out.Methods[i] = e.req.Method
	}
	b.assignIDs(p.NewID)
	p.prepare(ctx, b)
	if opts.Prepared != nil {
		opts.Prepared()
	}
	if b.kind == "transaction" {
		return out, p.runTransaction(ctx, b, opts, out)
	}
	p.runBatch(ctx, b, out)
	return out, nil
}

// runTransaction runs every entry in one unit of work (http.html
// §3.1.0.11.2), in the prescribed order.
func (p *Processor) runTransaction(ctx context.Context, b *parsed, opts Options, out *Outcome) error {
	skip := out.Errs
	for i, e := range b.entries {
		if e.err != nil {
			err := entryError(i, e.err)
			if !opts.SkipInvalid || !skippable(err) {
				return err
			}
			skip[i] = err
		}
	}
	order := processingOrder(b.entries)
	for {
		err := transact(ctx, p.Store, b.anyIfMatch(), func(ctx context.Context, tx store.Tx) error {
			clear(out.Results)
			u := p.newUnit(tx, b.liveTargets(skip))
			if err := u.preResolveIfNoneExist(ctx, b, skip); err != nil {
				return err
			}
			for _, i := range order {
				if skip[i] != nil {
					continue
				}
				r, err := u.execute(ctx, &b.entries[i])
				if err != nil {
					return entryError(i, err)
				}
				out.Results[i] = r
			}
			return nil
		})
		ee, ok := errors.AsType[*EntryError](err)
		if err == nil || !opts.SkipInvalid || !ok || !skippable(err) || skip[ee.Index] != nil {
			if err != nil {
				clear(out.Results)
			}
			return err
		}
		skip[ee.Index] = err
	}
}

// skippable reports whether a failing entry is the entry's own fault, so
// that Options.SkipInvalid may leave it out.
func skippable(err error) bool { return fhir.IsCode(err, fhir.Invalid) }

// runBatch runs each entry in a unit of work of its own (http.html
// §3.1.0.11.1); a failing entry is reported in out.Errs.
func (p *Processor) runBatch(ctx context.Context, b *parsed, out *Outcome) {
	for _, i := range processingOrder(b.entries) {
		e := &b.entries[i]
		if e.err != nil {
			out.Errs[i] = e.err
			continue
		}
		err := transact(ctx, p.Store, e.req.IfMatch != "", func(ctx context.Context, tx store.Tx) error {
			u := p.newUnit(tx, b.targets)
			r, err := u.execute(ctx, e)
			out.Results[i] = r
			return err
		})
		if err != nil {
			out.Results[i] = nil
			out.Errs[i] = err
			if fhir.ErrorCode(err) == fhir.Internal {
				reqctx.Logger(ctx).Error("batch entry failed", "entry", i, "err", err)
			}
		}
	}
}

// execute runs one entry in the unit of work: its references are resolved
// first (again on every attempt, since what a conditional reference
// matches may have changed), then the executor runs it.
func (u *unit) execute(ctx context.Context, e *entry) (*Result, error) {
	req := e.req
	if req.Resource != nil && req.Method != http.MethodPatch {
		res, err := u.rewriteEntry(ctx, req.Resource)
		if err != nil {
			if _, ok := errors.AsType[*fhir.Error](err); !ok {
				err = invalid("resource: %v", err)
			}
			return nil, err
		}
		req.Resource = res
		req.Prepared = e.prepared
	}
	r, err := u.p.Exec.Execute(ctx, u.tx, &req)
	if err != nil {
		return nil, err
	}
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		u.wrote(urlType(req.URL))
		if e.typ != "" {
			u.wrote(e.typ)
		}
	}
	// A conditional create that found its resource: the fullUrl stands
	// for that resource from now on.
	if req.Method == http.MethodPost && req.IfNoneExist != "" && isURN(e.fullURL) && r != nil {
		if ref, ok := fhir.ParseReference(r.Location, ""); ok {
			u.targets[e.fullURL] = ref.Type + "/" + ref.ID
		}
	}
	return r, nil
}

// urlType is the resource type an entry's request.url names ("" when it
// names none).
func urlType(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return "" // absolute URLs: only the executor knows our base
	}
	u, _, _ = strings.Cut(strings.TrimPrefix(u, "/"), "?")
	u, _, _ = strings.Cut(u, "/")
	return u
}

// transact runs fn in one unit of work, again when it lost a version race
// and no If-Match asked to fail instead.
func transact(ctx context.Context, s store.Store, ifMatch bool, fn func(ctx context.Context, tx store.Tx) error) error {
	var err error
	for range conflictRetries {
		err = s.Transact(ctx, fn)
		if ifMatch || !fhir.IsCode(err, fhir.Conflict) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// entryError names the entry in err's diagnostics, keeping its code.
func entryError(i int, err error) error {
	if ee, ok := errors.AsType[*EntryError](err); ok && ee.Index == i {
		return err
	}
	code := fhir.ErrorCode(err)
	if code == fhir.Internal {
		return &EntryError{Index: i, err: err}
	}
	prefix := "Bundle.entry[" + strconv.Itoa(i) + "]: "
	issues := slices.Clone(fhir.OutcomeIssues(err))
	for k := range issues {
		issues[k].Diagnostics = prefix + issues[k].Diagnostics
	}
	return &EntryError{Index: i, err: &fhir.Error{Code: code, Message: prefix + err.Error(), Issues: issues}, cause: err}
}

// processingOrder is http.html §3.1.0.11.2: DELETE, then POST, then PUT and
// PATCH, then GET and HEAD, each group in Bundle order.
func processingOrder(entries []entry) []int {
	rank := func(m string) int {
		switch m {
		case http.MethodDelete:
			return 0
		case http.MethodPost:
			return 1
		case http.MethodPut, http.MethodPatch:
			return 2
		default:
			return 3
		}
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rank(entries[a].req.Method) - rank(entries[b].req.Method) })
	return order
}

type responseEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Response entryResponse   `json:"response"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	ETag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

func statusLine(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }

func (p *Processor) response(typ string, results []*Result, errs []error, ret Return) ([]byte, error) {
	out := struct {
		ResourceType string          `json:"resourceType"`
		ID           string          `json:"id"`
		Type         string          `json:"type"`
		Entry        []responseEntry `json:"entry"`
	}{"Bundle", p.NewID(), typ, make([]responseEntry, len(results))}
	for i, r := range results {
		re := &out.Entry[i]
		if r == nil {
			err := errs[i]
			re.Response.Status = statusLine(fhir.Status(fhir.ErrorCode(err)))
			re.Response.Outcome = fhir.ErrorOutcome(err)
			continue
		}
		re.FullURL = r.FullURL
		re.Response.Status = statusLine(r.Status)
		re.Response.Location = r.Location
		re.Response.ETag = r.ETag
		if !r.LastModified.IsZero() {
			re.Response.LastModified = fhir.FormatInstant(r.LastModified)
		}
		switch ret {
		case Representation:
			re.Resource = r.Resource
		case OperationOutcome:
			re.Response.Outcome = fhir.Outcome(fhir.Issue{Severity: "information", Code: "informational",
				Diagnostics: http.StatusText(r.Status)})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		// Every RawMessage in out is a stored resource or built here:
		// failing to encode means broken stored data, not a bad request.
		return nil, fmt.Errorf("bundle: encoding the %s: %w", typ, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isURN reports whether a fullUrl or reference names an entry of the
// Bundle rather than a resource on a server.
func isURN(s string) bool {
	return strings.HasPrefix(s, "urn:uuid:") || strings.HasPrefix(s, "urn:oid:")
}
