package search

import (
	"maps"
	"slices"
	"strings"
)

// Union parameters. Some parameters search the values of two or more
// others at once, and say so in their expression: Observation's combo-code
// is "Observation.code | Observation.component.code", the terms of code
// and of component-code; combo-code-value-quantity is the composite
// code-value-quantity on "Observation | Observation.component", the bases
// of code-value-quantity and component-code-value-quantity with the same
// components. Their rows would repeat the others' rows: on synthea-120,
// the six combo parameters were 236,000 of 1.96 million index rows.
//
// A parameter whose expression's terms (its top-level "|" operands; a
// composite's base expression, with components equal to the others') are
// exactly the terms of two or more other parameters of the same type and
// resource type, together, is a union of them. FHIRPath's "|" is a set
// union, so a value of the union is a value of one of its members and the
// other way round: Index writes no rows for a union, a condition on it is
// the OR of the same condition on each member (a negated one, :not or
// :missing=true, the negation of that OR), and _sort by it reads the
// members' rows. References are never unions: includes, chains and
// compartments name their parameter's own rows.

// findUnions fills r.unions. It runs before the fingerprint is taken.
func (r *Registry) findUnions() {
	r.unions = map[string]map[string][]string{}
	// A Param serves every type its definition names: split each once.
	terms := map[*Param][]string{}
	for _, params := range r.byType {
		for _, p := range params {
			if _, ok := terms[p]; !ok {
				terms[p] = unionTerms(p.Expression)
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(r.byType)) {
		params := r.byType[t]
		codes := slices.Sorted(maps.Keys(params))
		for _, code := range codes {
			if members := unionMembers(params, codes, terms, params[code]); members != nil {
				if r.unions[t] == nil {
					r.unions[t] = map[string][]string{}
				}
				r.unions[t][code] = members
			}
		}
	}
	// A union of unions would need its members' members; none of the
	// definitions has one, and a union whose member is a union simply keeps
	// rows of its own (decided on the set found above, so that the outcome
	// does not depend on map order).
	for t, us := range r.unions {
		var nested []string
		for code, members := range us {
			if slices.ContainsFunc(members, func(m string) bool { return us[m] != nil }) {
				nested = append(nested, code)
			}
		}
		for _, code := range nested {
			delete(us, code)
		}
		if len(us) == 0 {
			delete(r.unions, t)
		}
	}
}

// unionMembers returns the parameters of params (whose codes, sorted, are
// codes; terms holds each one's unionTerms) that u is the union of, in code
// order, or nil when it is not one.
func unionMembers(params map[string]*Param, codes []string, terms map[*Param][]string, u *Param) []string {
	if u.Type == "reference" || len(terms[u]) < 2 {
		return nil
	}
	want := map[string]bool{}
	for _, term := range terms[u] {
		want[term] = true
	}
	covered := map[string]bool{}
	var members []string
	for _, code := range codes {
		p := params[code]
		if p == u || p.Type != u.Type || !sameComponents(p, u) {
			continue
		}
		pt := terms[p]
		if len(pt) == 0 || slices.ContainsFunc(pt, func(s string) bool { return !want[s] || covered[s] }) {
			continue
		}
		for _, s := range pt {
			covered[s] = true
		}
		members = append(members, code)
	}
	if len(members) < 2 || len(covered) != len(want) {
		return nil
	}
	return members
}

// sameComponents reports whether two parameters have the same components
// (none, for parameters other than composites).
func sameComponents(a, b *Param) bool {
	return slices.EqualFunc(a.Components, b.Components, func(x, y Component) bool {
		return x.Type == y.Type && x.Expression == y.Expression
	})
}

// unionTerms splits a parameter's expression s at its top-level "|"
// operators: not inside parentheses, brackets or a quoted string.
func unionTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '`' || c == '"':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == '|' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if t := strings.TrimSpace(s[start:]); t != "" || len(out) > 0 {
		out = append(out, t)
	}
	if slices.Contains(out, "") {
		return nil // not an expression this can reason about
	}
	return out
}

// unionCondition is the condition of a union parameter: the condition the
// same key suffix (a modifier) and value make on each member, OR'ed. A
// negated condition (:not, :missing=true) is true when no value matches,
// which for a union is when no value of any member does: the negation of
// the OR of the members' positive conditions.
func (r *Registry) unionCondition(typ, suffix, value string, members []string) (Expr, error) {
	var or Or
	negated := false
	for _, m := range members {
		e, err := r.condition(typ, m+suffix, value)
		if err != nil {
			return nil, err
		}
		if n, ok := e.(Not); ok {
			e, negated = n.X, true
		}
		or = append(or, e)
	}
	if negated {
		return Not{simplify(or)}, nil
	}
	return simplify(or), nil
}
