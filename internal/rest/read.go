package rest

import (
	"context"
	"net/http"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// read is GET [base]/[type]/[id] (http.html §3.1.0.2): the stored bytes
// as they are, with ETag and Last-Modified, 304 for a matching
// If-None-Match or If-Modified-Since, 410 for a deleted resource.
func (a *API) read(c *call) error {
	v, err := a.cfg.Store.Read(c.r.Context(), c.typ, c.id)
	if err != nil {
		return err
	}
	return a.writeRead(c, v)
}

// vread is GET [base]/[type]/[id]/_history/[vid] (http.html §3.1.0.3).
func (a *API) vread(c *call) error {
	v, err := a.cfg.Store.VRead(c.r.Context(), c.typ, c.id, c.vid)
	if err != nil {
		return err
	}
	return a.writeRead(c, v)
}

func (a *API) writeRead(c *call, v *store.Version) error {
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
	if rt.kind == routeVersion {
		return a.cfg.Store.VRead(ctx, rt.typ, rt.id, rt.vid)
	}
	v, err := tx.Current(ctx, rt.typ, rt.id)
	if err != nil {
		return nil, err
	}
	if v.Deleted { // a store that reports deletion only by the flag
		return nil, fhir.Errorf(fhir.Gone, "%s/%s was deleted", rt.typ, rt.id)
	}
	return v, nil
}
