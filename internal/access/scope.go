package access

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Kind tells the clinical scopes apart from the launch and identity scopes.
type Kind int

const (
	// Other is any scope word this package does not interpret (launch,
	// openid, offline_access, ...); it only ever matches itself.
	Other Kind = iota
	// Clinical is a "context/Type.permissions[?query]" scope.
	Clinical
)

// Context is the first part of a clinical scope.
type Context string

// The three contexts of SMART App Launch 2.2 §"Clinical Scope Syntax".
const (
	Patient Context = "patient"
	User    Context = "user"
	System  Context = "system"
)

// Perm is a set of SMART v2 permissions, one bit per letter of "cruds".
type Perm uint8

// The v2 permissions, in the order they must be written.
const (
	Create Perm = 1 << iota
	Read
	Update
	Delete
	Search
)

const (
	permAll   = Create | Read | Update | Delete | Search
	permRead  = Read | Search
	permWrite = Create | Update | Delete
)

const permLetters = "cruds"

// String writes p in v2 form ("rs", "cruds").
func (p Perm) String() string {
	var b strings.Builder
	for i := range len(permLetters) {
		if p&(1<<i) != 0 {
			b.WriteByte(permLetters[i])
		}
	}
	return b.String()
}

// Param is one granular restriction of a clinical scope, such as
// category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory.
type Param struct{ Name, Value string }

// Scope is one parsed scope.
type Scope struct {
	Kind Kind
	// Word is the whole scope for Other scopes.
	Word string

	Context Context
	// Type is a resource type name or "*".
	Type  string
	Perms Perm
	// V1 records that the scope was written in v1 syntax (read, write, *),
	// so that a granted scope is answered in the syntax it was asked in.
	V1 bool
	// Params are the granular restrictions, sorted by name then value; a
	// resource matches the scope when it matches every one.
	Params []Param
}

// Parse parses one scope. Words that are not clinical scopes are accepted
// as Other scopes (RFC 6749 §3.3 lets the server ignore what it does not
// know); a word that starts like a clinical scope must be a valid one.
func Parse(s string) (Scope, error) {
	if s == "" {
		return Scope{}, fmt.Errorf("empty scope")
	}
	for _, r := range s {
		// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if r < 0x21 || r == 0x22 || r == 0x5c || r > 0x7e {
			return Scope{}, fmt.Errorf("scope %q: character %q is not allowed", s, r)
		}
	}
	ctx, rest, ok := strings.Cut(s, "/")
	switch Context(ctx) {
	case Patient, User, System:
	default:
		ok = false
	}
	if !ok {
		return Scope{Kind: Other, Word: s}, nil
	}
	sc := Scope{Kind: Clinical, Context: Context(ctx)}
	rest, query, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok {
		return Scope{}, fmt.Errorf("scope %q: missing \".permissions\"", s)
	}
	if typ != "*" && !validType(typ) {
		return Scope{}, fmt.Errorf("scope %q: %q is not a resource type", s, typ)
	}
	sc.Type = typ
	switch perm {
	case "read":
		sc.Perms, sc.V1 = permRead, true
	case "write":
		sc.Perms, sc.V1 = permWrite, true
	case "*":
		sc.Perms, sc.V1 = permAll, true
	default:
		p, err := parsePerms(perm)
		if err != nil {
			return Scope{}, fmt.Errorf("scope %q: %w", s, err)
		}
		sc.Perms = p
	}
	if hasQuery {
		if sc.V1 {
			return Scope{}, fmt.Errorf("scope %q: granular restrictions need v2 permissions", s)
		}
		params, err := parseQuery(query)
		if err != nil {
			return Scope{}, fmt.Errorf("scope %q: %w", s, err)
		}
		sc.Params = params
	}
	return sc, nil
}

// parsePerms reads v2 permissions: a non-empty subsequence of "cruds".
func parsePerms(s string) (Perm, error) {
	if s == "" {
		return 0, fmt.Errorf("empty permissions")
	}
	var p Perm
	next := 0
	for i := range len(s) {
		j := strings.IndexByte(permLetters[next:], s[i])
		if j < 0 {
			return 0, fmt.Errorf("permissions %q: must be letters of \"cruds\" in that order, each at most once", s)
		}
		p |= 1 << (next + j)
		next += j + 1
	}
	return p, nil
}

func parseQuery(q string) ([]Param, error) {
	if q == "" {
		return nil, fmt.Errorf("empty restriction after \"?\"")
	}
	var params []Param
	for part := range strings.SplitSeq(q, "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("restriction %q: want name=value", part)
		}
		n, err := url.QueryUnescape(name)
		if err != nil {
			return nil, fmt.Errorf("restriction %q: %w", part, err)
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			return nil, fmt.Errorf("restriction %q: %w", part, err)
		}
		params = append(params, Param{n, v})
	}
	slices.SortFunc(params, func(a, b Param) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return slices.Compact(params), nil
}

// validType accepts FHIR resource type names: an upper-case letter then
// letters (FHIR R4 resource names have no digits or punctuation).
func validType(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// String writes the scope back: v1 syntax when it was asked in v1 and the
// permissions have a v1 spelling, v2 otherwise.
func (s Scope) String() string {
	if s.Kind == Other {
		return s.Word
	}
	var b strings.Builder
	b.WriteString(string(s.Context))
	b.WriteByte('/')
	b.WriteString(s.Type)
	b.WriteByte('.')
	b.WriteString(s.permString())
	for i, p := range s.Params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(escape(p.Name))
		b.WriteByte('=')
		b.WriteString(escape(p.Value))
	}
	return b.String()
}

func (s Scope) permString() string {
	if s.V1 && len(s.Params) == 0 {
		switch s.Perms {
		case permRead:
			return "read"
		case permWrite:
			return "write"
		case permAll:
			return "*"
		}
	}
	return s.Perms.String()
}

// escape keeps the characters granular scopes are written with ("|", ":",
// "/") readable, and escapes only those that would break the grammar.
func escape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if c == '%' || c == '&' || c == '=' || c == '?' || c == '+' || c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// IsWildcard reports whether the scope names every resource type.
func (s Scope) IsWildcard() bool { return s.Kind == Clinical && s.Type == "*" }

// Covers reports whether a grant of s allows everything t asks for.
func (s Scope) Covers(t Scope) bool {
	if s.Kind != t.Kind {
		return false
	}
	if s.Kind == Other {
		return s.Word == t.Word
	}
	if s.Context != t.Context || (s.Type != "*" && s.Type != t.Type) || t.Perms&^s.Perms != 0 {
		return false
	}
	// Every restriction of s must also restrict t, or t would reach data s
	// does not.
	for _, p := range s.Params {
		if !slices.Contains(t.Params, p) {
			return false
		}
	}
	return true
}

// Intersect returns the scope allowing exactly what both s and t allow, and
// false when that is nothing. It keeps t's syntax (v1 or v2), so that a
// requested scope intersected with an allowed one reads as requested.
func Intersect(t, s Scope) (Scope, bool) {
	if s.Kind != t.Kind {
		return Scope{}, false
	}
	if s.Kind == Other {
		return t, s.Word == t.Word
	}
	if s.Context != t.Context {
		return Scope{}, false
	}
	out := Scope{Kind: Clinical, Context: t.Context, V1: t.V1}
	switch {
	case t.Type == "*":
		out.Type = s.Type
	case s.Type == "*" || s.Type == t.Type:
		out.Type = t.Type
	default:
		return Scope{}, false
	}
	out.Perms = s.Perms & t.Perms
	if out.Perms == 0 {
		return Scope{}, false
	}
	// Restrictions on the same name with different values match no
	// resource with a single such value only when the parameter has one
	// value; codes and categories can repeat, so both are kept (AND).
	out.Params = append(slices.Clone(t.Params), s.Params...)
	slices.SortFunc(out.Params, func(a, b Param) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	out.Params = slices.Compact(out.Params)
	if len(out.Params) == 0 {
		out.Params = nil
	}
	return out, true
}
