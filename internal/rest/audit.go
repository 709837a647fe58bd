package rest

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"smartfhir/internal/access"
	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
	"smartfhir/internal/reqctx"
	"smartfhir/internal/store"
)

// Auditor receives one event per request (audit.Log).
type Auditor interface {
	Record(e audit.Event) error
}

// trail collects, while a request runs, what its audit event names: the
// resources it returned or wrote and the patients they concern.
type trail struct {
	resources, patients orderedSet
	// query is the search's parameters when they did not all come in the
	// URL (POST _search).
	query string
	// base is the FHIR base URL, for absolute references to patients.
	base string
}

// orderedSet is a list of distinct strings in the order they came.
type orderedSet struct {
	list []string
	seen map[string]struct{} // once the list is long
}

// add appends s unless the set holds it or holds limit strings already
// (0: no limit). Short lists (a read's one resource and patient) are
// scanned; a map takes over past a few dozen.
func (o *orderedSet) add(s string, limit int) {
	if limit > 0 && len(o.list) >= limit {
		return
	}
	const scan = 32
	if o.seen == nil {
		if slices.Contains(o.list, s) {
			return
		}
		o.list = append(o.list, s)
		if len(o.list) > scan {
			o.seen = make(map[string]struct{}, 2*scan)
			for _, x := range o.list {
				o.seen[x] = struct{}{}
			}
		}
		return
	}
	if _, ok := o.seen[s]; ok {
		return
	}
	o.seen[s] = struct{}{}
	o.list = append(o.list, s)
}

// addResource notes "Type/id", once, up to audit.MaxResources.
func (t *trail) addResource(ref string) { t.resources.add(ref, audit.MaxResources) }

// addPatient notes a patient id, once.
func (t *trail) addPatient(id string) { t.patients.add(id, 0) }

// state is what a request carries in its context: its access policy and
// its audit trail (nil without an Auditor).
type state struct {
	policy *access.Policy
	trail  *trail
}

type stateKey struct{}

func stateOf(ctx context.Context) *state {
	s, _ := ctx.Value(stateKey{}).(*state)
	return s
}

func trailOf(ctx context.Context) *trail {
	if s := stateOf(ctx); s != nil {
		return s.trail
	}
	return nil
}

// note adds to the request's audit trail versions it returns or writes:
// the resources, and the patients their bodies refer to.
func note(ctx context.Context, vs ...*store.Version) {
	t := trailOf(ctx)
	if t == nil {
		return
	}
	for _, v := range vs {
		t.addResource(v.Type + "/" + v.ID)
		audit.Patients(v.Type, v.ID, v.Body, t.base, t.addPatient)
	}
}

// notePatients adds to the request's audit trail the patients that
// versions refer to, without the resources themselves: the record of a
// search or history names its query, which with its time says what it
// returned, and stays small.
func notePatients(ctx context.Context, vs ...*store.Version) {
	t := trailOf(ctx)
	if t == nil {
		return
	}
	for _, v := range vs {
		audit.Patients(v.Type, v.ID, v.Body, t.base, t.addPatient)
	}
}

// patientParams are the search parameters whose values name a patient
// even when the search finds nothing.
var patientParams = map[string]bool{"patient": true, "subject": true, "beneficiary": true}

// record sends the audit event of a finished request.
func (a *API) record(c *call, st *state, status int) {
	t := st.trail
	e := audit.Event{
		Time:        time.Now().UTC(),
		Interaction: c.interaction,
		Type:        c.typ,
		Status:      status,
		RequestID:   reqctx.RequestID(c.r.Context()),
	}
	if e.Interaction == "" {
		e.Interaction = iUnknown
	}
	if host, _, err := net.SplitHostPort(c.r.RemoteAddr); err == nil {
		e.Source = host
	} else {
		e.Source = c.r.RemoteAddr
	}
	if st.policy != nil {
		who := st.policy.Who()
		e.ClientID, e.Username, e.FHIRUser = who.ClientID, who.Username, who.FHIRUser
	}
	if c.typ != "" && c.id != "" {
		t.addResource(c.typ + "/" + c.id)
		if c.typ == "Patient" {
			t.addPatient(c.id)
		}
	}
	switch c.kind {
	case routeType, routeSearch, routeRoot, routeHistoryType, routeHistorySystem, routeHistoryInstance:
		e.Query = t.query
		if e.Query == "" {
			e.Query = c.r.URL.RawQuery
		}
		for name, vals := range c.query {
			name, _, _ = strings.Cut(name, ":")
			if !patientParams[name] && !(c.typ == "Patient" && name == "_id") {
				continue
			}
			for _, v := range vals {
				for s := range strings.SplitSeq(v, ",") {
					if r, ok := fhir.ParseReference(s, a.cfg.Base); ok && r.Type == "Patient" {
						t.addPatient(r.ID)
					} else if fhir.ValidID(s) && (name == "patient" || name == "_id") {
						t.addPatient(s)
					}
				}
			}
		}
	}
	e.Resources, e.Patients = t.resources.list, t.patients.list
	// Record fails only once the log is closed, at shutdown, when requests
	// no longer arrive.
	_ = a.cfg.Audit.Record(e)
}

// auditHandler answers the AuditEvent routes when the API serves the
// audit log: read and search for administrators; nothing can be written.
func (a *API) auditHandler(rt route, method string) (h handlerFunc, interaction, allow string) {
	get := method == http.MethodGet || method == http.MethodHead
	switch {
	case rt.kind == routeType && get, rt.kind == routeSearch && (get || method == http.MethodPost):
		return (*API).auditSearch, iSearchType, ""
	case rt.kind == routeInstance && get:
		return (*API).auditRead, iRead, ""
	case rt.kind == routeSearch:
		return nil, "", "GET, HEAD, POST"
	}
	return nil, "", "GET, HEAD"
}

// errAuditWrite is the answer to any attempt to write an AuditEvent.
func errAuditWrite() error {
	return fhir.Errorf(fhir.MethodNotAllowed, "AuditEvent resources are the server's audit log: it writes them itself, and they cannot be created, changed or deleted")
}

// allowAudit checks that the request's token may read the audit log: an
// administrator's, with a scope that allows perm on AuditEvent.
func allowAudit(ctx context.Context, perm access.Perm) error {
	p := policyOf(ctx)
	if p.Server() {
		return nil
	}
	if !p.Who().Admin {
		return fhir.Errorf(fhir.Forbidden, "only administrators may read the audit log")
	}
	return allow(ctx, "AuditEvent", perm)
}

// auditSearch is GET [base]/AuditEvent?patient=&date=&agent=&subtype=
// (and POST _search): the audit log, newest first, paged by a cursor.
func (a *API) auditSearch(c *call) error {
	ctx := c.r.Context()
	if err := allowAudit(ctx, access.Search); err != nil {
		return err
	}
	params, err := a.searchParams(c)
	if err != nil {
		return err
	}
	q, err := audit.ParseQuery(params, a.cfg.DefaultCount, a.cfg.MaxCount)
	if err != nil {
		return err
	}
	page, err := a.cfg.AuditLog.Search(ctx, q)
	if err != nil {
		return err
	}
	self := url.Values{}
	for k, v := range params {
		if k != audit.CursorParam && k != "_format" {
			self[k] = v
		}
	}
	out := searchsetBundle{ResourceType: "Bundle", ID: a.cfg.NewID(), Type: "searchset"}
	out.Link = append(out.Link, link{"self", a.auditURL(self, q.Before)})
	if len(page) == q.Count {
		out.Link = append(out.Link, link{"next", a.auditURL(self, page[len(page)-1].Seq)})
	}
	for i := range page {
		s := &page[i]
		e := searchEntry{FullURL: a.cfg.Base + "/AuditEvent/" + strconv.FormatInt(s.Seq, 10), Resource: s.Resource(a.cfg.Base, a.cfg.Issuer)}
		e.Search.Mode = "match"
		out.Entry = append(out.Entry, e)
	}
	body, err := out.render(nil)
	if err != nil {
		return err
	}
	a.writeBody(c, http.StatusOK, body)
	return nil
}

// auditURL is the absolute URL of a page of an audit search.
func (a *API) auditURL(params url.Values, before int64) string {
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	if before > 0 {
		p.Set(audit.CursorParam, strconv.FormatInt(before, 10))
	}
	u := a.cfg.Base + "/AuditEvent"
	if len(p) > 0 {
		u += "?" + p.Encode()
	}
	return u
}

// auditRead is GET [base]/AuditEvent/[id].
func (a *API) auditRead(c *call) error {
	if err := allowAudit(c.r.Context(), access.Read); err != nil {
		return err
	}
	seq, err := strconv.ParseInt(c.id, 10, 64)
	if err != nil || seq < 1 {
		return fhir.Errorf(fhir.NotFound, "AuditEvent/%s does not exist", c.id)
	}
	s, err := a.cfg.AuditLog.Get(c.r.Context(), seq)
	if err != nil {
		return err
	}
	a.writeBody(c, http.StatusOK, s.Resource(a.cfg.Base, a.cfg.Issuer))
	return nil
}
