package access

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// ErrInvalidToken is the error of a bearer token that is not an active
// access token: unknown, expired, revoked, of a revoked grant or of a
// client that is not approved (RFC 6750 §3.1 invalid_token).
var ErrInvalidToken = errors.New("invalid token")

// Grant is what a token carries besides its scopes: whose data its
// patient/ and user/ scopes reach.
type Grant struct {
	// Scopes are the granted scopes.
	Scopes Set
	// Patient is the launch patient (SMART launch context), the only
	// compartment patient/ scopes reach; "" for none.
	Patient string
	// UserPatients are the patients user/ scopes reach: for a patient
	// user their own id and those they act for, for a practitioner the
	// patients assigned to them. Empty when the token has no user.
	UserPatients []string
	// Who is whom the token acts for, as audit records name them.
	Who Principal
}

// Principal is whom a request acts for: the client, and the user who
// authorized it (none for a Backend Services token).
type Principal struct {
	ClientID string
	// Username is the login of the user; "" for client_credentials.
	Username string
	// FHIRUser is the user's relative reference (Patient/85), if any.
	FHIRUser string
	// Admin marks a user with the administrator role: the only one whose
	// scopes reach audit records.
	Admin bool
}

// Rule is one clinical scope as it applies to a resource type: a resource
// of the type is reachable through it when it is in the compartment of one
// of Patients (every patient when AllPatients; types outside the Patient
// compartment ignore both) and it matches every one of Params.
type Rule struct {
	Perms       Perm
	AllPatients bool
	Patients    []string
	Params      []Param
}

// Unrestricted reports whether the rule reaches every resource of its type.
func (r Rule) Unrestricted() bool { return r.AllPatients && len(r.Params) == 0 }

// Policy is what a request may do on the FHIR API (DESIGN.md §6): for each
// resource type, the rules of the clinical scopes that name it. A
// resource is visible for an interaction when some rule whose permissions
// include the interaction's reaches it.
type Policy struct {
	rules map[string][]Rule // by resource type, "*" for the wildcard
	who   Principal
	// admin marks Everything: the server acting as itself (import, an
	// API without authentication), with no scope check at all.
	admin bool
}

// Everything is the policy that allows every interaction on every
// resource: what tools that act as the server itself use.
func Everything() *Policy { return &Policy{admin: true} }

// NewPolicy compiles the clinical scopes of g into a policy (SMART App
// Launch 2.2 §"Scopes for requesting clinical data"): patient/ scopes
// reach the launch patient's compartment, user/ scopes the user's
// patients, system/ scopes every patient. Other scope words are ignored.
func NewPolicy(g Grant) *Policy {
	p := &Policy{rules: map[string][]Rule{}, who: g.Who}
	for _, s := range g.Scopes {
		if s.Kind != Clinical {
			continue
		}
		r := Rule{Perms: s.Perms, Params: s.Params}
		switch s.Context {
		case System:
			r.AllPatients = true
		case Patient:
			if g.Patient != "" {
				r.Patients = []string{g.Patient}
			}
		case User:
			r.Patients = slices.Compact(slices.Sorted(slices.Values(g.UserPatients)))
		}
		p.rules[s.Type] = append(p.rules[s.Type], r)
	}
	return p
}

// Who is whom the policy's token acts for; the zero Principal for
// Everything.
func (p *Policy) Who() Principal { return p.who }

// Server reports whether the policy is Everything: the server acting as
// itself rather than a request's token.
func (p *Policy) Server() bool { return p.admin }

// Allows reports whether some scope allows perm (one permission) on
// resources of typ at all; the resource itself may still be out of reach.
func (p *Policy) Allows(typ string, perm Perm) bool {
	if p.admin {
		return true
	}
	for _, r := range p.rules[typ] {
		if r.Perms&perm != 0 {
			return true
		}
	}
	for _, r := range p.rules["*"] {
		if r.Perms&perm != 0 {
			return true
		}
	}
	return false
}

// Rules returns the rules that allow perm on typ. A resource of typ is
// reachable when any one of them reaches it; none means nothing is, and
// unrestricted reports that one of them reaches everything.
func (p *Policy) Rules(typ string, perm Perm) (rules []Rule, unrestricted bool) {
	if p.admin {
		return nil, true
	}
	for _, key := range [2]string{typ, "*"} {
		for _, r := range p.rules[key] {
			if r.Perms&perm == 0 {
				continue
			}
			if r.Unrestricted() {
				return nil, true
			}
			rules = append(rules, r)
		}
	}
	return rules, false
}

// String describes the policy for logs and test messages.
func (p *Policy) String() string {
	if p.admin {
		return "everything"
	}
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(p.rules)) {
		for _, r := range p.rules[t] {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(t + "." + r.Perms.String())
			if r.AllPatients {
				b.WriteString(" all patients")
			} else {
				b.WriteString(" patients " + strings.Join(r.Patients, ","))
			}
			for _, pa := range r.Params {
				b.WriteString(" " + pa.Name + "=" + pa.Value)
			}
		}
	}
	return b.String()
}
