package rest

import (
	"context"
	"errors"
	"net/http"
	"time"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// conflictRetries is how often a read-modify-write that lost a version race
// is tried again when the client sent no If-Match (with If-Match, losing
// the race is the client's 412).
const conflictRetries = 5

// transact runs fn in one unit of work, again when it lost a version race
// and no If-Match asked to fail instead.
func (a *API) transact(ctx context.Context, ifMatch int64, fn func(ctx context.Context, tx store.Tx) error) error {
	var err error
	for range conflictRetries {
		err = a.cfg.Store.Transact(ctx, fn)
		if !fhir.IsCode(err, fhir.Conflict) || ctx.Err() != nil {
			return err
		}
		if ifMatch != 0 {
			return fhir.Errorf(fhir.PreconditionFailed, "the resource changed concurrently; If-Match W/\"%d\" no longer holds", ifMatch)
		}
	}
	return err
}

// put stores v; with If-Match, losing a race to another writer is a failed
// precondition rather than a conflict.
func put(ctx context.Context, tx store.Tx, v *store.Version, ifMatch int64) error {
	err := tx.Put(ctx, v)
	if ifMatch != 0 && fhir.IsCode(err, fhir.Conflict) {
		return fhir.Errorf(fhir.PreconditionFailed, "the resource changed concurrently; If-Match W/\"%d\" no longer holds", ifMatch)
	}
	if err == nil {
		note(ctx, v)
	}
	return err
}

// current is tx.Current with a missing resource as nil and a deleted one as
// its deletion version.
func current(ctx context.Context, tx store.Tx, typ, id string) (cur *store.Version, deleted bool, err error) {
	cur, err = tx.Current(ctx, typ, id)
	switch {
	case err == nil:
		return cur, cur.Deleted, nil
	case fhir.IsCode(err, fhir.NotFound):
		return nil, false, nil
	case fhir.IsCode(err, fhir.Gone) && cur != nil:
		return cur, true, nil
	}
	return nil, false, err
}

// payload is a resource body on its way to the store. Parsing, validation
// and index extraction depend on the body and its id but not on the version
// number or the time the unit of work assigns, so prepare does them before
// the unit of work whenever the id is known there. On SQLite the unit of
// work holds the only writer, so what is left inside — stamping the body
// and writing it — is all that serialises writes.
type payload struct {
	raw []byte
	p   *fhir.Prepared
	err error // of fhir.Prepare
	// id is the id that ix and valid were computed for ("" when nothing was
	// prepared); a body stored under another id is checked afresh.
	id    string
	ix    *search.Index
	valid bool
}

func newPayload(raw []byte) *payload { return &payload{raw: raw} }

// parsed parses the body once.
func (pl *payload) parsed() (*fhir.Prepared, error) {
	if pl.p == nil && pl.err == nil {
		pl.p, pl.err = fhir.Prepare(pl.raw)
	}
	return pl.p, pl.err
}

// prepare validates the body as it will be stored under id and extracts
// its index rows. Errors are left for the unit of work to report, in the
// order it checks things.
func (a *API) prepare(pl *payload, typ, id string) {
	p, err := pl.parsed()
	if err != nil || p.ResourceType != typ {
		return
	}
	body := p.Stamp(id, 1, time.Now())
	if a.validate(body) != nil {
		return
	}
	pl.id, pl.valid = id, true
	if a.cfg.Search != nil {
		if ix, err := a.cfg.Search.Index(typ, body); err == nil {
			pl.ix = ix
		}
	}
}

// stampAndValidate sets the id and meta of v's body and validates it,
// unless prepare already did the validation for this id.
func (a *API) stampAndValidate(pl *payload, v *store.Version) error {
	p, err := pl.parsed()
	if err != nil {
		return err
	}
	body := p.Stamp(v.ID, v.VersionID, v.LastUpdated)
	if pl.valid && pl.id == v.ID {
		v.Body, v.Index = body, pl.ix
		return nil
	}
	if err := a.validate(body); err != nil {
		return err
	}
	v.Body = body
	return nil
}

func (a *API) validate(body []byte) error {
	if a.cfg.Validator == nil {
		return nil
	}
	if err := a.cfg.Validator.Resource(body); err != nil {
		if _, ok := errors.AsType[*fhir.Error](err); ok {
			return err
		}
		return fhir.Errorf(fhir.Invalid, "%v", err)
	}
	return nil
}

// checkType reads the resource's header and checks its type against the URL.
func checkType(pl *payload, typ string) (fhir.Header, error) {
	p, err := pl.parsed()
	if err != nil {
		return fhir.Header{}, err
	}
	h := p.Header
	if h.ResourceType != typ {
		return h, &fhir.Error{Code: fhir.Invalid, Issues: []fhir.Issue{{Severity: "error", Code: "invalid",
			Diagnostics: "resourceType " + h.ResourceType + " does not match the URL's type " + typ,
			Expression:  []string{"resourceType"}}}}
	}
	return h, nil
}

// writeResult renders a write's outcome as Prefer asks (http.html
// §3.1.0.8.3): the resource, nothing, or an OperationOutcome.
func (a *API) writeResult(c *call, status int, v *store.Version, message string) {
	h := c.w.Header()
	versionHeaders(h, v)
	loc := a.cfg.Base + "/" + v.Type + "/" + v.ID + "/_history/" + itoa(v.VersionID)
	if status == http.StatusCreated {
		h.Set("Location", loc)
	}
	h.Set("Content-Location", loc)
	switch preferReturn(c.r) {
	case bundle.Minimal:
		c.w.WriteHeader(status)
	case bundle.OperationOutcome:
		a.writeBody(c, status, fhir.Outcome(fhir.Issue{Severity: "information", Code: "informational", Diagnostics: message}))
	default:
		a.writeBody(c, status, v.Body)
	}
}
