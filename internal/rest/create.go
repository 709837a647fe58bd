package rest

import (
	"context"
	"net/http"
	"strconv"

	"smartfhir/internal/access"
	"smartfhir/internal/store"
)

// create is POST [base]/[type] (http.html §3.1.0.7.1): the server assigns
// the id (an id in the body is ignored) and answers 201 with a Location of
// the new version. With If-None-Exist it is a conditional create
// (§3.1.0.7.2): when the criteria match one resource, nothing is written
// and the answer is 200 with that resource.
func (a *API) create(c *call) error {
	body, err := a.readBody(c, false)
	if err != nil {
		return err
	}
	ifNoneExist := c.r.Header.Get("If-None-Exist")
	id := a.cfg.NewID()
	pl := newPayload(body)
	a.prepare(pl, c.typ, id)
	var v *store.Version
	var created bool
	err = a.transact(c.r.Context(), 0, func(ctx context.Context, tx store.Tx) error {
		v, created, err = a.doCreate(ctx, tx, c.typ, id, pl, ifNoneExist)
		return err
	})
	if err != nil {
		return err
	}
	if !created {
		a.writeResult(c, http.StatusOK, v, "If-None-Exist matched "+v.Type+"/"+v.ID+"; nothing was created")
		return nil
	}
	a.writeResult(c, http.StatusCreated, v, "created "+v.Type+"/"+v.ID)
	return nil
}

// doCreate creates the resource under id, unless ifNoneExist (search
// criteria, "" for none) matches a resource: then it returns that
// resource and created is false.
func (a *API) doCreate(ctx context.Context, tx store.Tx, typ, id string, body *payload, ifNoneExist string) (v *store.Version, created bool, err error) {
	if _, err := checkType(body, typ); err != nil {
		return nil, false, err
	}
	if err := allow(ctx, typ, access.Create); err != nil {
		return nil, false, err
	}
	if ifNoneExist != "" {
		existing, err := a.conditionalCreateMatch(ctx, tx, typ, ifNoneExist)
		if existing != nil {
			note(ctx, existing)
		}
		if err != nil || existing != nil {
			return existing, false, err
		}
	}
	v = &store.Version{Type: typ, ID: id, VersionID: 1, LastUpdated: tx.Now(), Method: http.MethodPost}
	if err := a.stampAndValidate(body, v); err != nil {
		return nil, false, err
	}
	if err := a.checkWritable(ctx, v, v.Index, access.Create); err != nil {
		return nil, false, err
	}
	if err := tx.Put(ctx, v); err != nil {
		return nil, false, err
	}
	note(ctx, v)
	return v, true, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
