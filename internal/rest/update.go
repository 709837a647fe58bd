package rest

import (
	"context"
	"net/http"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// update is PUT [base]/[type]/[id] (http.html §3.1.0.4): 200 for a new
// version, 201 when the resource is created (update as create, with the
// client's id) or brought back after a deletion. The body's id must equal
// the URL's; If-Match makes it a version-aware update. PUT [base]/[type]?
// [criteria] is a conditional update (conditionalUpdate).
func (a *API) update(c *call) error {
	ifMatch, err := parseIfMatch(c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	body, err := a.readBody(c, false)
	if err != nil {
		return err
	}
	pl := newPayload(body)
	a.prepare(pl, c.typ, c.id)
	var v *store.Version
	var created bool
	err = a.transact(c.r.Context(), ifMatch, func(ctx context.Context, tx store.Tx) error {
		v, created, err = a.doUpdate(ctx, tx, c.typ, c.id, pl, ifMatch)
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

func (a *API) doUpdate(ctx context.Context, tx store.Tx, typ, id string, body *payload, ifMatch int64) (v *store.Version, created bool, err error) {
	h, err := checkType(body, typ)
	if err != nil {
		return nil, false, err
	}
	if h.ID == "" {
		return nil, false, idError("the resource has no id; an update must carry the id of the URL")
	}
	if h.ID != id {
		return nil, false, idError("the resource's id " + h.ID + " does not match the URL's id " + id)
	}
	return a.updateAs(ctx, tx, typ, id, body, ifMatch)
}

// updateAs stores body as the next version of typ/id (the first when there
// is none, or the resource was deleted), whatever id the body carries: the
// caller has checked it.
func (a *API) updateAs(ctx context.Context, tx store.Tx, typ, id string, body *payload, ifMatch int64) (v *store.Version, created bool, err error) {
	if err := allow(ctx, typ, access.Update); err != nil {
		return nil, false, err
	}
	cur, deleted, err := current(ctx, tx, typ, id)
	if err != nil {
		return nil, false, err
	}
	if cur != nil && !deleted {
		if err := a.checkVisible(ctx, cur, nil, access.Update); err != nil {
			return nil, false, err
		}
	}
	if err := checkIfMatch(ifMatch, cur); err != nil {
		return nil, false, err
	}
	v = &store.Version{Type: typ, ID: id, VersionID: 1, LastUpdated: tx.Now(), Method: http.MethodPut}
	if cur != nil {
		v.VersionID = cur.VersionID + 1
	}
	if err := a.stampAndValidate(body, v); err != nil {
		return nil, false, err
	}
	if err := a.checkWritable(ctx, v, v.Index, access.Update); err != nil {
		return nil, false, err
	}
	if err := put(ctx, tx, v, ifMatch); err != nil {
		return nil, false, err
	}
	return v, cur == nil || deleted, nil
}

func idError(msg string) error {
	return &fhir.Error{Code: fhir.Invalid, Issues: []fhir.Issue{{Severity: "error", Code: "invalid",
		Diagnostics: msg, Expression: []string{"id"}}}}
}
