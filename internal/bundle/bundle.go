package bundle

import (
	"bytes"
	"context"
	"encoding/json"
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
	b, err := parse(body)
	if b != nil {
		kind = b.kind
	}
	if err != nil {
		return kind, nil, err
	}
	if b.kind == "transaction" {
		for i, e := range b.entries {
			if e.err != nil {
				return kind, nil, entryError(i, e.err)
			}
		}
	}
	if err := b.resolve(p.NewID); err != nil {
		return kind, nil, err
	}
	order := processingOrder(b.entries)
	results := make([]*Result, len(b.entries))
	if b.kind == "transaction" {
		err = transact(ctx, p.Store, b.anyIfMatch(), func(ctx context.Context, tx store.Tx) error {
			clear(results)
			for _, i := range order {
				r, err := p.Exec.Execute(ctx, tx, &b.entries[i].req)
				if err != nil {
					return entryError(i, err)
				}
				results[i] = r
			}
			return nil
		})
		if err != nil {
			return kind, nil, err
		}
		resp, err = p.response("transaction-response", results, nil, ret)
		return kind, resp, err
	}
	errs := make([]error, len(b.entries))
	for _, i := range order {
		e := b.entries[i]
		if e.err != nil {
			errs[i] = e.err
			continue
		}
		err := transact(ctx, p.Store, e.req.IfMatch != "", func(ctx context.Context, tx store.Tx) error {
			r, err := p.Exec.Execute(ctx, tx, &e.req)
			results[i] = r
			return err
		})
		if err != nil {
			results[i] = nil
			errs[i] = err
			if fhir.ErrorCode(err) == fhir.Internal {
				reqctx.Logger(ctx).Error("batch entry failed", "entry", i, "err", err)
			}
		}
	}
	resp, err = p.response("batch-response", results, errs, ret)
	return kind, resp, err
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
	code := fhir.ErrorCode(err)
	if code == fhir.Internal {
		return err
	}
	prefix := "Bundle.entry[" + strconv.Itoa(i) + "]: "
	issues := slices.Clone(fhir.OutcomeIssues(err))
	for k := range issues {
		issues[k].Diagnostics = prefix + issues[k].Diagnostics
	}
	return &fhir.Error{Code: code, Message: prefix + err.Error(), Issues: issues}
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
