package rest

import (
	"context"
	"errors"
	"net/http"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
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

// stampAndValidate sets id and meta, then validates what will be stored.
func (a *API) stampAndValidate(raw []byte, v *store.Version) error {
	body, err := fhir.Stamp(raw, v.ID, v.VersionID, v.LastUpdated)
	if err != nil {
		return err
	}
	if a.cfg.Validator != nil {
		if err := a.cfg.Validator.Resource(body); err != nil {
			if _, ok := errors.AsType[*fhir.Error](err); ok {
				return err
			}
			return fhir.Errorf(fhir.Invalid, "%v", err)
		}
	}
	v.Body = body
	return nil
}

// checkType reads the resource's header and checks its type against the URL.
func checkType(raw []byte, typ string) (fhir.Header, error) {
	h, err := fhir.ReadHeader(raw)
	if err != nil {
		return h, err
	}
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
