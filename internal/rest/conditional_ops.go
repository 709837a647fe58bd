package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Conditional operations (http.html §3.1.0.4.3 conditional update,
// §3.1.0.6.1 conditional delete, §3.1.0.7.2 conditional create) and the
// searches behind conditional references and ifNoneExist in Bundles.
//
// The criteria are parsed strictly: an unknown or unsupported parameter is
// a 400, because ignoring it (as a plain search does) would widen the match
// to resources the client never meant, and these operations write.

// MaxConditionalDelete is the most resources one conditional delete
// removes (CapabilityStatement conditionalDelete = multiple); criteria that
// match more are refused with 412 as not selective enough.
const MaxConditionalDelete = 100

// ConditionalCapabilities are the CapabilityStatement.rest.resource values
// these operations support, for capabilities.go.
var ConditionalCapabilities = struct {
	Create, Update bool
	Delete         string // not-supported | single | multiple
}{true, true, "multiple"}

// queryParser is what conditional operations need of the search registry.
type queryParser interface {
	Parse(resourceType string, q url.Values, strict bool) (*search.Query, []fhir.Issue, error)
}

// resultParams are the search result parameters (search.html §3.1.1.5.5
// "Modifying Search Results"): they shape a page, not the set of matches,
// so conditional operations drop them.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_include": true, "_revinclude": true, "_summary": true,
	"_elements": true, "_total": true, "_contained": true, "_containedType": true,
	"_format": true, "_pretty": true, "_cursor": true,
}

// criteria parses the search criteria of a conditional operation on typ
// (a query string without "?"). Empty criteria are refused: they would
// match every resource of the type.
func (a *API) criteria(typ, rawQuery string) (*search.Query, error) {
	rawQuery = strings.TrimPrefix(rawQuery, "?")
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "the search criteria %q are malformed: %v", rawQuery, err)
	}
	for k := range vals {
		if resultParams[k] {
			delete(vals, k)
		}
	}
	if len(vals) == 0 {
		return nil, fhir.Errorf(fhir.Invalid, "a conditional operation on %s needs search criteria", typ)
	}
	p := a.parser()
	if p == nil {
		return nil, fhir.Errorf(fhir.NotSupported, "conditional operations need search, which is not configured")
	}
	q, _, err := p.Parse(typ, vals, true)
	if err != nil {
		return nil, err
	}
	q.Sort, q.Include, q.RevInclude, q.Total, q.Cursor = nil, nil, nil, search.TotalNone, ""
	return q, nil
}

// match returns up to limit current resources of typ that the criteria
// select, inside the unit of work (or, tx nil, in what is committed).
func (a *API) match(ctx context.Context, tx store.Tx, typ, rawQuery string, limit int) ([]*store.Version, error) {
	q, err := a.criteria(typ, rawQuery)
	if err != nil {
		return nil, err
	}
	q.Count = limit
	if err := a.restrict(ctx, q); err != nil {
		return nil, err
	}
	var res *store.SearchResult
	if tx != nil {
		res, err = tx.Search(ctx, q)
	} else {
		res, err = a.cfg.Store.Search(ctx, q)
	}
	if err != nil {
		return nil, err
	}
	return res.Matches, nil
}

// conditionalCreateMatch is the search of a conditional create
// (§3.1.0.7.2): nil when nothing matches (create), the match when one
// does (do nothing), 412 when several do.
func (a *API) conditionalCreateMatch(ctx context.Context, tx store.Tx, typ, ifNoneExist string) (*store.Version, error) {
	ms, err := a.match(ctx, tx, typ, ifNoneExist, 2)
	switch {
	case err != nil:
		return nil, err
	case len(ms) == 0:
		return nil, nil
	case len(ms) == 1:
		return ms[0], nil
	}
	return nil, fhir.Errorf(fhir.PreconditionFailed, "If-None-Exist %q matches more than one %s: the criteria are not selective enough", ifNoneExist, typ)
}

// typeAllow is the Allow header of [base]/[type] without search criteria:
// PUT and DELETE there need criteria.
const typeAllow = "GET, HEAD, POST"

// conditionalUpdate is PUT [base]/[type]?[criteria] (http.html §3.1.0.4.3).
func (a *API) conditionalUpdate(c *call) error {
	if c.r.URL.RawQuery == "" {
		c.w.Header().Set("Allow", typeAllow)
		return fhir.Errorf(fhir.MethodNotAllowed, "PUT on %s needs an id (update) or search criteria (conditional update)", c.typ)
	}
	ifMatch, err := parseIfMatch(c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	body, err := a.readBody(c, false)
	if err != nil {
		return err
	}
	pl := newPayload(body)
	var v *store.Version
	var created bool
	err = a.transact(c.r.Context(), ifMatch, func(ctx context.Context, tx store.Tx) error {
		v, created, err = a.doConditionalUpdate(ctx, tx, c.typ, c.r.URL.RawQuery, pl, ifMatch)
		return err
	})
	if err != nil {
		return err
	}
	status, msg := http.StatusOK, "updated "
	if created {
		status, msg = http.StatusCreated, "created "
	}
	a.writeResult(c, status, v, msg+v.Type+"/"+v.ID)
	return nil
}

// doConditionalUpdate answers by the number of matches (§3.1.0.4.3):
//   - none, and the body has no id: create it with a new server id;
//   - none, and the body has an id: update as create under that id;
//   - one: update it; a body id other than the match's is a 400;
//   - several: 412, the criteria are not selective enough.
func (a *API) doConditionalUpdate(ctx context.Context, tx store.Tx, typ, rawQuery string, body *payload, ifMatch int64) (v *store.Version, created bool, err error) {
	h, err := checkType(body, typ)
	if err != nil {
		return nil, false, err
	}
	ms, err := a.match(ctx, tx, typ, rawQuery, 2)
	if err != nil {
		return nil, false, err
	}
	switch len(ms) {
	case 0:
		if h.ID == "" {
			if ifMatch != 0 {
				return nil, false, fhir.Errorf(fhir.PreconditionFailed, "If-Match W/\"%d\": the criteria match no resource", ifMatch)
			}
			return a.doCreate(ctx, tx, typ, a.cfg.NewID(), body, "")
		}
		if !fhir.ValidID(h.ID) {
			return nil, false, idError("the resource's id " + strconv.Quote(h.ID) + " is not a valid id")
		}
		return a.updateAs(ctx, tx, typ, h.ID, body, ifMatch)
	case 1:
		if h.ID != "" && h.ID != ms[0].ID {
			return nil, false, idError("the resource's id " + h.ID + " is not the id of the resource the criteria match (" + ms[0].ID + ")")
		}
		return a.updateAs(ctx, tx, typ, ms[0].ID, body, ifMatch)
	}
	return nil, false, fhir.Errorf(fhir.PreconditionFailed, "the criteria %q match more than one %s: they are not selective enough for a conditional update", rawQuery, typ)
}

// conditionalDelete is DELETE [base]/[type]?[criteria] (http.html
// §3.1.0.6.1). It deletes every match, up to MaxConditionalDelete in one
// unit of work (conditionalDelete = multiple); no match is a success that
// deletes nothing.
func (a *API) conditionalDelete(c *call) error {
	if c.r.URL.RawQuery == "" {
		c.w.Header().Set("Allow", typeAllow)
		return fhir.Errorf(fhir.MethodNotAllowed, "DELETE on %s needs an id (delete) or search criteria (conditional delete)", c.typ)
	}
	ifMatch, err := parseIfMatch(c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	var deleted []*store.Version
	err = a.transact(c.r.Context(), ifMatch, func(ctx context.Context, tx store.Tx) error {
		deleted, err = a.doConditionalDelete(ctx, tx, c.typ, c.r.URL.RawQuery, ifMatch)
		return err
	})
	if err != nil {
		return err
	}
	if len(deleted) == 1 {
		c.w.Header()["Etag"] = []string{fhir.ETag(deleted[0].VersionID)}
	}
	if preferReturn(c.r) == bundle.OperationOutcome {
		msg := "the criteria matched no " + c.typ + ": nothing was deleted"
		if len(deleted) > 0 {
			ids := make([]string, len(deleted))
			for i, v := range deleted {
				ids[i] = v.Type + "/" + v.ID
			}
			msg = "deleted " + strings.Join(ids, ", ")
		}
		a.writeBody(c, http.StatusOK, fhir.Outcome(fhir.Issue{Severity: "information", Code: "informational", Diagnostics: msg}))
		return nil
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// doConditionalDelete deletes every current match and returns the deletion
// versions it stored.
func (a *API) doConditionalDelete(ctx context.Context, tx store.Tx, typ, rawQuery string, ifMatch int64) ([]*store.Version, error) {
	ms, err := a.match(ctx, tx, typ, rawQuery, MaxConditionalDelete+1)
	if err != nil {
		return nil, err
	}
	if len(ms) > MaxConditionalDelete {
		return nil, fhir.Errorf(fhir.PreconditionFailed, "the criteria %q match more than %d %s resources: they are not selective enough for a conditional delete", rawQuery, MaxConditionalDelete, typ)
	}
	if ifMatch != 0 && len(ms) != 1 {
		return nil, fhir.Errorf(fhir.PreconditionFailed, "If-Match W/\"%d\" needs criteria that match exactly one resource; they match %d", ifMatch, len(ms))
	}
	var out []*store.Version
	for _, m := range ms {
		v, err := a.doDelete(ctx, tx, typ, m.ID, ifMatch)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Match implements bundle.Matcher: the search behind conditional
// references and ifNoneExist in Bundles.
func (x executor) Match(ctx context.Context, tx store.Tx, typ, query string, limit int) ([]string, error) {
	if !x.a.types[typ] {
		return nil, fhir.Errorf(fhir.Invalid, "unknown resource type %q in a conditional reference", typ)
	}
	ms, err := x.a.match(ctx, tx, typ, query, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids, nil
}

var _ bundle.Matcher = executor{}

// conditionalEntry runs a Bundle entry PUT or DELETE [type]?[criteria]
// (http.html §3.1.0.11.2 allows conditional URLs in entries).
func (a *API) conditionalEntry(ctx context.Context, tx store.Tx, req *bundle.Request, typ, rawQuery string, ifMatch int64) (*bundle.Result, error) {
	switch req.Method {
	case http.MethodPut:
		v, created, err := a.doConditionalUpdate(ctx, tx, typ, rawQuery, entryPayload(req), ifMatch)
		if err != nil {
			return nil, err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return a.versionResult(status, v), nil
	case http.MethodDelete:
		vs, err := a.doConditionalDelete(ctx, tx, typ, rawQuery, ifMatch)
		if err != nil {
			return nil, err
		}
		res := &bundle.Result{Status: http.StatusNoContent}
		if len(vs) == 1 {
			res.ETag, res.LastModified = fhir.ETag(vs[0].VersionID), vs[0].LastUpdated
		}
		return res, nil
	}
	return nil, fhir.Errorf(fhir.NotSupported, "conditional %s is not supported", strings.ToLower(req.Method))
}

// parser is the registry the criteria are parsed with; nil when the API
// was configured without search.
func (a *API) parser() queryParser {
	if a.cfg.Search == nil {
		return nil
	}
	return a.cfg.Search
}
