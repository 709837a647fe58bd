package rest

import (
	"context"
	"net/http"
	"strconv"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// create is POST [base]/[type] (http.html §3.1.0.7.1): the server assigns
// the id (an id in the body is ignored) and answers 201 with a Location of
// the new version.
func (a *API) create(c *call) error {
	if c.r.Header.Get("If-None-Exist") != "" {
		return fhir.Errorf(fhir.NotSupported, "conditional create (If-None-Exist) is not supported")
	}
	body, err := a.readBody(c, false)
	if err != nil {
		return err
	}
	id := a.cfg.NewID()
	var v *store.Version
	err = a.transact(c.r.Context(), 0, func(ctx context.Context, tx store.Tx) error {
		v, err = a.doCreate(ctx, tx, c.typ, id, body)
		return err
	})
	if err != nil {
		return err
	}
	a.writeResult(c, http.StatusCreated, v, "created "+v.Type+"/"+v.ID)
	return nil
}

func (a *API) doCreate(ctx context.Context, tx store.Tx, typ, id string, body []byte) (*store.Version, error) {
	if _, err := checkType(body, typ); err != nil {
		return nil, err
	}
	v := &store.Version{Type: typ, ID: id, VersionID: 1, LastUpdated: tx.Now(), Method: http.MethodPost}
	if err := a.stampAndValidate(body, v); err != nil {
		return nil, err
	}
	if err := tx.Put(ctx, v); err != nil {
		return nil, err
	}
	return v, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
