package rest

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// batchHandler is POST [base] with a batch or transaction Bundle
// (http.html §3.1.0.11); package bundle does the work, executing entries
// through executor.
func (a *API) batchHandler(c *call) error {
	body, err := a.readBody(c, false)
	if err != nil {
		return err
	}
	kind, resp, err := a.bundle.Process(c.r.Context(), body, preferReturn(c.r))
	if kind == "transaction" {
		c.interaction = iTransaction
	}
	if err != nil {
		return err
	}
	a.writeBody(c, http.StatusOK, resp)
	return nil
}

// Bundles returns the processor behind POST [base], for callers that load
// Bundles without HTTP (smartfhir import): same validation, ids and
// reference resolution.
func (a *API) Bundles() *bundle.Processor { return a.bundle }

// executor runs one batch or transaction entry with the code of the
// single-resource interactions.
type executor struct{ a *API }

var _ bundle.Executor = executor{}

// entryRoute splits an entry's request.url into the path relative to the
// base, its query, and the route the path names.
func (a *API) entryRoute(u string) (path, rawQuery string, rt route, err error) {
	path, rawQuery, _ = strings.Cut(u, "?")
	if rel, ok := strings.CutPrefix(path, a.cfg.Base+"/"); ok {
		path = rel
	} else if strings.Contains(path, "://") {
		return "", "", route{}, fhir.Errorf(fhir.Invalid, "request.url %q is not on this server; use a URL relative to the base", u)
	}
	path = strings.TrimPrefix(path, "/")
	rt, err = a.parseRoute(path)
	return path, rawQuery, rt, err
}

// Execute runs one entry inside tx.
func (x executor) Execute(ctx context.Context, tx store.Tx, req *bundle.Request) (*bundle.Result, error) {
	a := x.a
	path, rawQuery, rt, err := a.entryRoute(req.URL)
	if err != nil {
		return nil, err
	}
	if rt.typ == "AuditEvent" && a.cfg.AuditLog != nil {
		return nil, fhir.Errorf(fhir.NotSupported, "AuditEvent entries are not supported in a Bundle: the audit log is read with GET [base]/AuditEvent and written only by the server")
	}
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "request.url %q has a malformed query: %v", req.URL, err)
	}
	notAllowed := func() error {
		return fhir.Errorf(fhir.Invalid, "%s is not supported on %q in a Bundle entry", req.Method, req.URL)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		switch rt.kind {
		case routeInstance, routeVersion:
			v, err := a.readEntry(ctx, tx, rt)
			if err != nil {
				return nil, err
			}
			note(ctx, v)
			res := a.versionResult(http.StatusOK, v)
			if notModified(req.IfNoneMatch, req.IfModifiedSince, v) {
				res.Status, res.Resource = http.StatusNotModified, nil
			}
			return res, nil
		case routeHistoryInstance, routeHistoryType, routeHistorySystem:
			b, err := a.history(ctx, store.HistoryQuery{Type: rt.typ, ID: rt.id}, path, query)
			if err != nil {
				return nil, err
			}
			return &bundle.Result{Status: http.StatusOK, Resource: b}, nil
		case routeMetadata:
			return &bundle.Result{Status: http.StatusOK, Resource: a.caps}, nil
		case routeRoot, routeType, routeSearch:
			return nil, fhir.Errorf(fhir.NotSupported, "search is not supported by this server yet")
		}
	case http.MethodPost:
		if rt.kind != routeType || rawQuery != "" {
			return nil, notAllowed()
		}
		id := req.ID
		if id == "" {
			id = a.cfg.NewID()
		}
		v, created, err := a.doCreate(ctx, tx, rt.typ, id, entryPayload(req), req.IfNoneExist)
		if err != nil {
			return nil, err
		}
		if !created {
			return a.versionResult(http.StatusOK, v), nil
		}
		return a.versionResult(http.StatusCreated, v), nil
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		ifMatch, err := parseIfMatch(req.IfMatch)
		if err != nil {
			return nil, err
		}
		if rt.kind == routeType && rawQuery != "" {
			return a.conditionalEntry(ctx, tx, req, rt.typ, rawQuery, ifMatch)
		}
		if rt.kind != routeInstance {
			return nil, notAllowed()
		}
		switch req.Method {
		case http.MethodPut:
			v, created, err := a.doUpdate(ctx, tx, rt.typ, rt.id, entryPayload(req), ifMatch)
			if err != nil {
				return nil, err
			}
			status := http.StatusOK
			if created {
				status = http.StatusCreated
			}
			return a.versionResult(status, v), nil
		case http.MethodPatch:
			v, err := a.doPatch(ctx, tx, rt.typ, rt.id, req.Resource, ifMatch)
			if err != nil {
				return nil, err
			}
			return a.versionResult(http.StatusOK, v), nil
		default:
			v, err := a.doDelete(ctx, tx, rt.typ, rt.id, ifMatch)
			if err != nil {
				return nil, err
			}
			res := &bundle.Result{Status: http.StatusNoContent}
			if v != nil {
				res.ETag, res.LastModified = fhir.ETag(v.VersionID), v.LastUpdated
			}
			return res, nil
		}
	}
	return nil, notAllowed()
}

func (a *API) versionResult(status int, v *store.Version) *bundle.Result {
	return &bundle.Result{
		Status:       status,
		Location:     v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID),
		FullURL:      a.cfg.Base + "/" + v.Type + "/" + v.ID,
		ETag:         fhir.ETag(v.VersionID),
		LastModified: v.LastUpdated,
		Resource:     v.Body,
	}
}

// entryPayload is the body of a Bundle entry: what Prepare made of it when
// it was prepared from these very bytes (its references resolved as
// guessed), or else a fresh payload, checked inside the unit of work.
func entryPayload(req *bundle.Request) *payload {
	if pl, ok := req.Prepared.(*payload); ok && bytes.Equal(pl.raw, req.Resource) {
		return pl
	}
	return newPayload(req.Resource)
}

var _ bundle.Preparer = executor{}

// Prepare implements bundle.Preparer: it parses, validates and indexes the
// resource of a POST [type] or PUT [type]/[id] entry under the id it will
// have, as create and update do before their unit of work.
func (x executor) Prepare(req *bundle.Request) any {
	a := x.a
	_, rawQuery, rt, err := a.entryRoute(req.URL)
	if err != nil || rawQuery != "" {
		return nil
	}
	var id string
	switch {
	case req.Method == http.MethodPost && rt.kind == routeType:
		id = req.ID
	case req.Method == http.MethodPut && rt.kind == routeInstance:
		id = rt.id
	}
	if id == "" {
		return nil
	}
	pl := newPayload(req.Resource)
	a.prepare(pl, rt.typ, id)
	return pl
}
