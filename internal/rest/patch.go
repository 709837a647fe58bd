package rest

import (
	"context"
	"errors"
	"net/http"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/jsonpatch"
	"smartfhir/internal/store"
)

// patch is PATCH [base]/[type]/[id] with a JSON Patch (http.html
// §3.1.0.7.2, RFC 6902). The result is validated like an update and may
// not change the resource's id or type; a failing test operation is 422.
func (a *API) patch(c *call) error {
	ifMatch, err := parseIfMatch(c.r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	doc, err := a.readBody(c, true)
	if err != nil {
		return err
	}
	var v *store.Version
	err = a.transact(c.r.Context(), ifMatch, func(ctx context.Context, tx store.Tx) error {
		v, err = a.doPatch(ctx, tx, c.typ, c.id, doc, ifMatch)
		return err
	})
	if err != nil {
		return err
	}
	a.writeResult(c, http.StatusOK, v, "patched "+v.Type+"/"+v.ID)
	return nil
}

func (a *API) doPatch(ctx context.Context, tx store.Tx, typ, id string, doc []byte, ifMatch int64) (*store.Version, error) {
	if err := allow(ctx, typ, access.Update); err != nil {
		return nil, err
	}
	cur, err := tx.Current(ctx, typ, id)
	if err == nil && cur.Deleted {
		err = fhir.Errorf(fhir.Gone, "%s/%s was deleted", typ, id)
	}
	if err != nil {
		return nil, a.hideGone(ctx, typ, id, err)
	}
	if err := a.checkVisible(ctx, cur, nil, access.Update); err != nil {
		return nil, err
	}
	if err := checkIfMatch(ifMatch, cur); err != nil {
		return nil, err
	}
	out, err := jsonpatch.Apply(cur.Body, doc)
	switch {
	case errors.Is(err, jsonpatch.ErrInvalidPatch):
		return nil, fhir.Errorf(fhir.Invalid, "%v", err)
	case errors.Is(err, jsonpatch.ErrTestFailed), errors.Is(err, jsonpatch.ErrCannotApply):
		return nil, fhir.Errorf(fhir.Unprocessable, "%v", err)
	case err != nil:
		return nil, err // the stored resource is not JSON: internal
	}
	h, err := fhir.ReadHeader(out)
	if err != nil {
		return nil, fhir.Errorf(fhir.Unprocessable, "the patched document is not a resource: %v", err)
	}
	if h.ResourceType != typ || h.ID != id {
		return nil, fhir.Errorf(fhir.Unprocessable, "a patch may not change the resource's resourceType or id")
	}
	v := &store.Version{Type: typ, ID: id, VersionID: cur.VersionID + 1, LastUpdated: tx.Now(), Method: http.MethodPatch}
	if err := a.stampAndValidate(newPayload(out), v); err != nil {
		return nil, err
	}
	if err := a.checkWritable(ctx, v, v.Index, access.Update); err != nil {
		return nil, err
	}
	if err := put(ctx, tx, v, ifMatch); err != nil {
		return nil, err
	}
	return v, nil
}
