package rest

import (
	"context"
	"errors"
	"strings"

	"smartfhir/internal/access"
	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Authenticator checks a bearer token (RFC 6750 §2.1) and says what it
// allows. A token that is not an active access token answers an error
// wrapping access.ErrInvalidToken; any other error is a server fault.
type Authenticator interface {
	Authenticate(ctx context.Context, bearer string) (*access.Policy, error)
}

// policyOf is the access policy of the request of ctx. A context without
// one belongs to the server itself (an API without an Authenticator, the
// import command's Bundles): everything is allowed.
func policyOf(ctx context.Context) *access.Policy {
	if s := stateOf(ctx); s != nil && s.policy != nil {
		return s.policy
	}
	return access.Everything()
}

// authenticate reads the bearer token of the request (RFC 6750 §2.1) and
// puts its policy in the request's state. Without a usable token the
// answer is 401 with a WWW-Authenticate challenge (RFC 6750 §3): no error
// code when no token was sent (§3.1), invalid_token otherwise.
func (a *API) authenticate(c *call, st *state) error {
	h := c.r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="`+a.cfg.Base+`"`)
		return fhir.Errorf(fhir.Unauthorized, "this request needs a bearer access token (RFC 6750)")
	}
	policy, err := a.cfg.Auth.Authenticate(c.r.Context(), strings.TrimSpace(token))
	if errors.Is(err, access.ErrInvalidToken) {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="`+a.cfg.Base+`", error="invalid_token", error_description="the access token is not valid"`)
		return fhir.Errorf(fhir.Unauthorized, "the access token is expired, revoked or unknown")
	}
	if err != nil {
		return err
	}
	st.policy = policy
	return nil
}

// forbidden is the answer to a request its token's scopes do not cover.
func forbidden(typ string, perm access.Perm) error {
	return fhir.Errorf(fhir.Forbidden, "the access token does not allow %q on %s", perm.String(), typ)
}

// allow checks that the request's policy allows perm on typ at all (403).
func allow(ctx context.Context, typ string, perm access.Perm) error {
	if !policyOf(ctx).Allows(typ, perm) {
		return forbidden(typ, perm)
	}
	return nil
}

// visibility is the access policy as the search engine takes it: for each
// type, the condition a resource must satisfy for one of the rules that
// allow perm.
type visibility struct {
	a      *API
	policy *access.Policy
	perm   access.Perm
}

var _ search.Visibility = visibility{}

// Visible answers OR over the rules of (patient compartments AND granular
// restrictions). A rule's patients restrict only types of the Patient
// compartment; its restrictions that cannot be compiled hide everything.
func (v visibility) Visible(typ string) (search.Expr, bool) {
	cond, ok, err := v.a.condition(v.policy, typ, v.perm)
	if err != nil {
		return nil, false
	}
	return cond, ok
}

// condition compiles the rules of policy for typ and perm into a search
// condition: nil when the policy shows every resource of typ, ok false
// when it shows none.
func (a *API) condition(policy *access.Policy, typ string, perm access.Perm) (search.Expr, bool, error) {
	rules, unrestricted := policy.Rules(typ, perm)
	if unrestricted {
		return nil, true, nil
	}
	if len(rules) == 0 || a.cfg.Search == nil {
		return nil, false, nil
	}
	inCompartment := typ == "Patient" || len(a.cfg.Search.CompartmentParams(typ)) > 0
	var or search.Or
	for _, r := range rules {
		var and search.And
		if inCompartment && !r.AllPatients {
			if len(r.Patients) == 0 {
				continue
			}
			var pats search.Or
			for _, p := range r.Patients {
				pats = append(pats, search.Compartment{Patient: p})
			}
			and = append(and, simplify(pats))
		}
		if len(r.Params) > 0 {
			g, err := a.granular(typ, r.Params)
			if err != nil {
				return nil, false, err
			}
			and = append(and, g...)
		}
		if len(and) == 0 {
			return nil, true, nil
		}
		or = append(or, and)
	}
	switch len(or) {
	case 0:
		return nil, false, nil
	case 1:
		return or[0], true, nil
	}
	return or, true, nil
}

func simplify(or search.Or) search.Expr {
	if len(or) == 1 {
		return or[0]
	}
	return or
}

// granular compiles the restrictions of a granular scope
// (patient/Observation.rs?category=…) as the search parameters they are.
// Only plain parameters are allowed: no result parameters, chains or _has,
// whose conditions could not be checked on one resource.
func (a *API) granular(typ string, params []access.Param) (search.And, error) {
	vals := map[string][]string{}
	for _, p := range params {
		if strings.HasPrefix(p.Name, "_") || strings.Contains(p.Name, ".") {
			return nil, fhir.Errorf(fhir.Forbidden, "the scope restriction %s=%s cannot be enforced", p.Name, p.Value)
		}
		vals[p.Name] = append(vals[p.Name], p.Value)
	}
	q, _, err := a.cfg.Search.Parse(typ, vals, true)
	if err != nil {
		return nil, fhir.Errorf(fhir.Forbidden, "the scope restrictions on %s cannot be enforced: %v", typ, err)
	}
	return q.Where, nil
}

// checkVisible answers 404, as if it did not exist, when the request's
// policy does not show v for perm (read, or a write over a stored
// resource). ix is v's index when the caller has it.
func (a *API) checkVisible(ctx context.Context, v *store.Version, ix *search.Index, perm access.Perm) error {
	ok, err := a.visibleVersion(ctx, v, ix, perm)
	if err != nil {
		return err
	}
	if !ok {
		// The audit record of the denial names whose data was asked
		// for; the answer itself says nothing.
		note(ctx, v)
		return fhir.Errorf(fhir.NotFound, "%s/%s does not exist", v.Type, v.ID)
	}
	return nil
}

// checkWritable answers 403 when the request's policy would not show the
// resource it is about to store (v, whose index is ix) for perm: a write
// must stay inside the compartments and restrictions of its scopes.
func (a *API) checkWritable(ctx context.Context, v *store.Version, ix *search.Index, perm access.Perm) error {
	ok, err := a.visibleVersion(ctx, v, ix, perm)
	if err != nil {
		return err
	}
	if !ok {
		return fhir.Errorf(fhir.Forbidden, "the access token does not allow writing this %s: it is outside the token's patients or restrictions", v.Type)
	}
	return nil
}

func (a *API) visibleVersion(ctx context.Context, v *store.Version, ix *search.Index, perm access.Perm) (bool, error) {
	cond, ok, err := a.condition(policyOf(ctx), v.Type, perm)
	if err != nil || !ok {
		return false, err
	}
	if cond == nil {
		return true, nil
	}
	if ix == nil {
		if v.Deleted || len(v.Body) == 0 {
			// What a deletion hid cannot be checked: a restricted policy
			// sees deleted resources as absent.
			return false, nil
		}
		if search.OnlyCompartments(cond) {
			// Patient scopes without restrictions: the compartments
			// are all the check needs, and far cheaper than the index.
			// A Patient is in its own compartment, and such a condition
			// only grows with more patients: when the own one is
			// enough, nothing needs reading.
			if v.Type == "Patient" {
				if ok, err := search.Match(&search.Index{Patients: []string{v.ID}}, v.ID, 0, cond); ok || err != nil {
					return ok, err
				}
			}
			pats, err := a.cfg.Search.Compartments(v.Type, v.Body)
			if err != nil {
				return false, err
			}
			ix = &search.Index{Patients: pats}
		} else if ix, err = a.cfg.Search.Index(v.Type, v.Body); err != nil {
			return false, err
		}
	}
	return search.Match(ix, v.ID, v.LastUpdated.UnixMicro(), cond)
}

// restricted reports whether the request's policy hides some resources of
// typ from perm (patients or granular restrictions), so that deletions,
// which cannot be checked, must be hidden.
func (a *API) restricted(ctx context.Context, typ string, perm access.Perm) bool {
	_, unrestricted := policyOf(ctx).Rules(typ, perm)
	return !unrestricted
}

// allTypes reports whether the request's policy shows every resource of
// every served type for perm: what a system-wide history needs.
func (a *API) allTypes(ctx context.Context, perm access.Perm) bool {
	p := policyOf(ctx)
	for t := range a.types {
		if _, ok := p.Rules(t, perm); !ok {
			return false
		}
	}
	return true
}
