package rest

import (
	"context"
	"net/http"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// read is GET [base]/[type]/[id] (http.html §3.1.0.2): the stored bytes
// as they are, with ETag and Last-Modified, 304 for a matching
// If-None-Match or If-Modified-Since, 410 for a deleted resource.
func (a *API) read(c *call) error {
	ctx := c.r.Context()
	if err := allow(ctx, c.typ, access.Read); err != nil {
		return err
	}
	v, err := a.cfg.Store.Read(ctx, c.typ, c.id)
	if err != nil {
		return a.hideGone(ctx, c.typ, c.id, err)
	}
	if err := a.checkVisible(ctx, v, nil, access.Read); err != nil {
		return err
	}
	return a.writeRead(c, v)
}

// hideGone turns the 410 of a deleted resource into a 404 when the
// request's policy restricts typ: whose the resource was cannot be checked
// once it is deleted, so it must look absent.
func (a *API) hideGone(ctx context.Context, typ, id string, err error) error {
	if fhir.IsCode(err, fhir.Gone) && a.restricted(ctx, typ, access.Read) {
		return fhir.Errorf(fhir.NotFound, "%s/%s does not exist", typ, id)
	}
	return err
}

// vread is GET [base]/[type]/[id]/_history/[vid] (http.html §3.1.0.3).
func (a *API) vread(c *call) error {
	ctx := c.r.Context()
	if err := allow(ctx, c.typ, access.Read); err != nil {
		return err
	}
	v, err := a.cfg.Store.VRead(ctx, c.typ, c.id, c.vid)
	if err != nil {
		return a.hideGone(ctx, c.typ, c.id, err)
	}
	if err := a.checkVisible(ctx, v, nil, access.Read); err != nil {
		return err
	}
	return a.writeRead(c, v)
}

func (a *API) writeRead(c *call, v *store.Version) error {
	note(c.r.Context(), v)
	h := c.w.Header()
	versionHeaders(h, v)
	if notModified(c.r.Header.Get("If-None-Match"), c.r.Header.Get("If-Modified-Since"), v) {
		c.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	a.writeBody(c, http.StatusOK, v.Body)
	return nil
}

// readEntry is a GET read or vread of a batch or transaction entry. Inside
// a transaction a read sees the transaction's own writes.
func (a *API) readEntry(ctx context.Context, tx store.Tx, rt route) (*store.Version, error) {
	if err := allow(ctx, rt.typ, access.Read); err != nil {
		return nil, err
	}
	var v *store.Version
	var err error
	if rt.kind == routeVersion {
		v, err = a.cfg.Store.VRead(ctx, rt.typ, rt.id, rt.vid)
	} else {
		v, err = tx.Current(ctx, rt.typ, rt.id)
		if err == nil && v.Deleted { // a store that reports deletion only by the flag
			err = fhir.Errorf(fhir.Gone, "%s/%s was deleted", rt.typ, rt.id)
		}
	}
	if err != nil {
		return nil, a.hideGone(ctx, rt.typ, rt.id, err)
	}
	if err := a.checkVisible(ctx, v, nil, access.Read); err != nil {
		return nil, err
	}
	return v, nil
}
