package rest

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
)

// searchType is GET [base]/[type]?… and POST [base]/[type]/_search with a
// form-encoded body (http.html §3.1.0.8, search.html#2.1.0.2): both give
// the same answer, a searchset Bundle. Unknown or unsupported parameters
// are reported in an OperationOutcome entry, or, with Prefer:
// handling=strict, make the request a 400.
func (a *API) searchType(c *call) error {
	if a.cfg.Search == nil {
		return fhir.Errorf(fhir.NotSupported, "search is not configured on this server")
	}
	params, err := a.searchParams(c)
	if err != nil {
		return err
	}
	ctx := c.r.Context()
	if err := allow(ctx, c.typ, access.Search); err != nil {
		return err
	}
	q, issues, err := a.cfg.Search.Parse(c.typ, params, preferStrict(c.r))
	if err != nil {
		return err
	}
	if err := a.restrict(ctx, q); err != nil {
		return err
	}
	a.pageSize(q)
	res, err := a.cfg.Store.Search(ctx, q)
	if err != nil {
		return err
	}
	notePatients(ctx, res.Matches...)
	notePatients(ctx, res.Included...)
	if t := trailOf(ctx); t != nil && c.r.Method == http.MethodPost {
		t.query = params.Encode()
	}
	buf := pageBuffer()
	b, err := a.searchset(*buf, c.typ, params, q, res, issues)
	if err != nil {
		return err
	}
	a.writeBody(c, http.StatusOK, b)
	if c.r.ProtoMajor == 1 {
		// HTTP/1 has written or copied the page when Write returns. (An
		// HTTP/2 stream reset mid-write may leave it queued for the
		// connection's frame writer: that buffer is not reused.)
		putPageBuffer(buf, b)
	}
	return nil
}

// searchParams are the parameters of a search: the URL's, and with POST
// those of the form-encoded body too.
func (a *API) searchParams(c *call) (url.Values, error) {
	params := url.Values{}
	for k, v := range c.query {
		params[k] = v
	}
	if c.r.Method == http.MethodPost {
		form, err := a.readForm(c)
		if err != nil {
			return nil, err
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	return params, nil
}

// restrict gives q the request's access policy (search for the matches,
// chained and _has targets and included resources), after checking that
// the policy's granular restrictions on q's type can be enforced.
func (a *API) restrict(ctx context.Context, q *search.Query) error {
	policy := policyOf(ctx)
	if _, _, err := a.condition(policy, q.Type, access.Search); err != nil {
		return err
	}
	q.Access = visibility{a: a, policy: policy, perm: access.Search}
	return nil
}

// pageSize applies the configured default and maximum page size; a
// _summary=count search asks for no resources and the total
// (search.html#summary).
func (a *API) pageSize(q *search.Query) {
	switch {
	case q.Summary == "count":
		q.Count, q.Total = 0, search.TotalAccurate
	case q.Count < 0:
		q.Count = a.cfg.DefaultCount
	case q.Count > a.cfg.MaxCount:
		q.Count = a.cfg.MaxCount
	}
}

// readForm reads the application/x-www-form-urlencoded body of POST
// _search.
func (a *API) readForm(c *call) (url.Values, error) {
	ct := c.r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, fhir.Errorf(fhir.UnsupportedMediaType, "POST _search takes application/x-www-form-urlencoded, not %q", ct)
		}
	}
	limit := a.cfg.MaxBodyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(c.r.Body, limit+1))
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "cannot read the request body: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fhir.Errorf(fhir.Invalid, "the form body is malformed: %v", err)
	}
	return form, nil
}

// preferStrict reads Prefer: handling=strict (search.html#errors); lenient
// is the default.
func preferStrict(r *http.Request) bool {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ";") {
			for _, p := range strings.Split(p, ",") {
				if strings.EqualFold(strings.TrimSpace(p), "handling=strict") {
					return true
				}
			}
		}
	}
	return false
}

// searchSystem is GET [base]?… (http.html §3.1.0.8). Searching across all
// types is not offered: every US Core search names its type.
func (a *API) searchSystem(c *call) error {
	return fhir.Errorf(fhir.NotSupported, "system-wide search is not supported by this server; search a resource type")
}
