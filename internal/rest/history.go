package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// cursorParam carries the store's keyset cursor in the next link.
const cursorParam = "_cursor"

// historyInstance is GET [base]/[type]/[id]/_history (http.html §3.1.0.9).
func (a *API) historyInstance(c *call) error {
	return a.writeHistory(c, store.HistoryQuery{Type: c.typ, ID: c.id}, c.typ+"/"+c.id+"/_history")
}

// historyType is GET [base]/[type]/_history.
func (a *API) historyType(c *call) error {
	return a.writeHistory(c, store.HistoryQuery{Type: c.typ}, c.typ+"/_history")
}

// historySystem is GET [base]/_history.
func (a *API) historySystem(c *call) error {
	return a.writeHistory(c, store.HistoryQuery{}, "_history")
}

func (a *API) writeHistory(c *call, q store.HistoryQuery, path string) error {
	b, err := a.history(c.r.Context(), q, path, c.query)
	if err != nil {
		return err
	}
	a.writeBody(c, http.StatusOK, b)
	return nil
}

// history answers a history interaction as a Bundle of type history,
// newest first, with keyset paging links (self, next) as absolute URLs.
// It honours _since, _at and _count and ignores other parameters
// (http.html §3.1.0.9: unknown parameters are ignored unless strict).
func (a *API) history(ctx context.Context, q store.HistoryQuery, path string, params url.Values) ([]byte, error) {
	if err := a.allowHistory(ctx, q); err != nil {
		return nil, err
	}
	countOnly := false
	q.Count = a.cfg.DefaultCount
	if s := params.Get("_count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, paramError("_count", "_count must be a non-negative integer, not %q", s)
		}
		q.Count = min(n, a.cfg.MaxCount)
		if n == 0 { // only the total is wanted (search.html#count)
			countOnly, q.Count = true, 1
		}
	}
	if s := params.Get("_since"); s != "" {
		dt, err := fhir.ParseDateTime(s)
		if err != nil {
			return nil, paramError("_since", "_since: %v", err)
		}
		q.Since, _ = dt.Range()
	}
	if s := params.Get("_at"); s != "" {
		dt, err := fhir.ParseDateTime(s)
		if err != nil {
			return nil, paramError("_at", "_at: %v", err)
		}
		q.At, q.AtEnd = dt.Range()
	}
	q.Cursor = params.Get(cursorParam)
	page, err := a.cfg.Store.History(ctx, q)
	if err != nil {
		return nil, err
	}
	notePatients(ctx, page.Versions...)
	if q.ID != "" && len(page.Versions) == 0 && q.Cursor == "" {
		// An empty history of a resource that never existed is a 404.
		if _, err := a.cfg.Store.Read(ctx, q.Type, q.ID); fhir.IsCode(err, fhir.NotFound) {
			return nil, err
		}
	}
	out := historyBundle{ResourceType: "Bundle", ID: a.cfg.NewID(), Type: "history", Total: page.Total}
	out.Link = append(out.Link, link{"self", a.pageURL(path, params, q.Cursor)})
	if page.Next != "" && !countOnly {
		out.Link = append(out.Link, link{"next", a.pageURL(path, params, page.Next)})
	}
	if !countOnly {
		out.Entry = make([]historyEntry, len(page.Versions))
		for i, v := range page.Versions {
			out.Entry[i] = a.historyEntry(v)
		}
	}
	return marshalRaw(out) // fails only on a stored body that is not JSON
}

type historyBundle struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Total        int            `json:"total"`
	Link         []link         `json:"link"`
	Entry        []historyEntry `json:"entry,omitempty"`
}

type link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type historyEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Request  struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
	Response struct {
		Status       string `json:"status"`
		ETag         string `json:"etag"`
		LastModified string `json:"lastModified"`
	} `json:"response"`
}

// allowHistory checks a history interaction against the request's
// policy. The history of one resource needs read on its type and its
// current version visible; it then shows every version. History across a
// type or the server cannot be filtered by patient or restriction (its
// versions' compartments are not indexed), so it needs a policy that
// shows every resource of the type, or of every type: system/ scopes.
func (a *API) allowHistory(ctx context.Context, q store.HistoryQuery) error {
	switch {
	case q.Type == "":
		if !a.allTypes(ctx, access.Search) {
			return fhir.Errorf(fhir.Forbidden, "the history of the whole server needs access to every resource of every type")
		}
	case q.ID == "":
		if err := allow(ctx, q.Type, access.Search); err != nil {
			return err
		}
		if a.restricted(ctx, q.Type, access.Search) {
			return fhir.Errorf(fhir.Forbidden, "the history of every %s needs access to every %s", q.Type, q.Type)
		}
	default:
		if err := allow(ctx, q.Type, access.Read); err != nil {
			return err
		}
		if !a.restricted(ctx, q.Type, access.Read) {
			return nil
		}
		v, err := a.cfg.Store.Read(ctx, q.Type, q.ID)
		if err != nil {
			return a.hideGone(ctx, q.Type, q.ID, err)
		}
		return a.checkVisible(ctx, v, nil, access.Read)
	}
	return nil
}

// historyEntry describes one version as Bundle.entry of a history Bundle
// (http.html §3.1.0.9): the resource (absent for a deletion), the request
// that made the version, and its response.
func (a *API) historyEntry(v *store.Version) historyEntry {
	var e historyEntry
	e.FullURL = a.cfg.Base + "/" + v.Type + "/" + v.ID
	if !v.Deleted {
		e.Resource = v.Body
	}
	method := v.Method
	if method == "" {
		method = http.MethodPut
		if v.Deleted {
			method = http.MethodDelete
		}
	}
	e.Request.Method = method
	e.Request.URL = v.Type + "/" + v.ID
	status := http.StatusOK
	switch {
	case method == http.MethodPost:
		e.Request.URL = v.Type
		status = http.StatusCreated
	case method == http.MethodDelete:
		status = http.StatusNoContent
	case v.VersionID == 1:
		status = http.StatusCreated
	}
	e.Response.Status = strconv.Itoa(status) + " " + http.StatusText(status)
	e.Response.ETag = fhir.ETag(v.VersionID)
	e.Response.LastModified = fhir.FormatInstant(v.LastUpdated)
	return e
}

// pageURL is the absolute URL of a history page: the request's parameters,
// with the cursor of the page replaced.
func (a *API) pageURL(path string, params url.Values, cursor string) string {
	p := url.Values{}
	for k, v := range params {
		if k != cursorParam {
			p[k] = v
		}
	}
	if cursor != "" {
		p.Set(cursorParam, cursor)
	}
	u := a.cfg.Base + "/" + path
	if len(p) > 0 {
		u += "?" + p.Encode()
	}
	return u
}

func paramError(name, format string, args ...any) error {
	e := fhir.Errorf(fhir.Invalid, format, args...)
	e.Issues = []fhir.Issue{{Severity: "error", Code: "invalid", Diagnostics: e.Message, Expression: []string{name}}}
	return e
}
