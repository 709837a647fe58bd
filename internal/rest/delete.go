package rest

import (
	"context"
	"net/http"

	"smartfhir/internal/access"
	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// delete is DELETE [base]/[type]/[id] (http.html §3.1.0.6). It stores a
// deletion version, which history keeps; a later read is 410 Gone. Deleting
// a deleted resource answers success without a new version; an unknown one
// is 404.
func (a *API) delete(c *call) error {
	ifMatch, err := parseIfMatch(c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	var v *store.Version
	err = a.transact(c.r.Context(), ifMatch, func(ctx context.Context, tx store.Tx) error {
		v, err = a.doDelete(ctx, tx, c.typ, c.id, ifMatch)
		return err
	})
	if err != nil {
		return err
	}
	if v != nil {
		c.w.Header()["Etag"] = []string{fhir.ETag(v.VersionID)}
	}
	if preferReturn(c.r) == bundle.OperationOutcome {
		a.writeBody(c, http.StatusOK, fhir.Outcome(fhir.Issue{Severity: "information", Code: "informational",
			Diagnostics: "deleted " + c.typ + "/" + c.id}))
		return nil
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// doDelete returns the deletion version it stored, or nil when the resource
// was already deleted.
func (a *API) doDelete(ctx context.Context, tx store.Tx, typ, id string, ifMatch int64) (*store.Version, error) {
	if err := allow(ctx, typ, access.Delete); err != nil {
		return nil, err
	}
	cur, deleted, err := current(ctx, tx, typ, id)
	if err != nil {
		return nil, err
	}
	if cur == nil || deleted && a.restricted(ctx, typ, access.Delete) {
		return nil, fhir.Errorf(fhir.NotFound, "%s/%s does not exist", typ, id)
	}
	if deleted {
		return nil, nil
	}
	if err := a.checkVisible(ctx, cur, nil, access.Delete); err != nil {
		return nil, err
	}
	note(ctx, cur) // whose data the deletion removes
	if err := checkIfMatch(ifMatch, cur); err != nil {
		return nil, err
	}
	v := &store.Version{Type: typ, ID: id, VersionID: cur.VersionID + 1, LastUpdated: tx.Now(), Deleted: true, Method: http.MethodDelete}
	if err := put(ctx, tx, v, ifMatch); err != nil {
		return nil, err
	}
	return v, nil
}
