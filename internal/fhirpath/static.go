package fhirpath

import "slices"

// ValueTypes returns the types the definitions give the values of the
// expression, evaluated on values of the types in from, or, with from
// nil, on a resource (the expression then starts with its type name, as
// search parameters' do). A type is a type name, or for an element defined
// inline its path ("Observation.component"), which is what its own
// elements are looked up by. It follows member navigation, where()
// filters (which select values but do not change their type) and unions
// (|); ok is false for anything else (as, ofType, extension(), resolve(),
// variables …), whose types it does not claim to know, and for a name the
// definitions do not have.
func (e *Expr) ValueTypes(from []string, types TypeResolver) (out []string, ok bool) {
	if types == nil {
		return nil, false
	}
	out, ok = staticTypes(e.root, from, types)
	slices.Sort(out)
	return slices.Compact(out), ok
}

// staticTypes is eval's walk over types instead of values.
func staticTypes(e expr, this []string, types TypeResolver) ([]string, bool) {
	switch e := e.(type) {
	case *memberExpr:
		if n := e.name[0]; this == nil && n >= 'A' && n <= 'Z' {
			// The resource's type name that starts a path.
			if _, known := types.BaseType(e.name); !known {
				return nil, false
			}
			return []string{e.name}, true
		}
		return staticInvoke(e, this, types)
	case *dotExpr:
		left, ok := staticTypes(e.left, this, types)
		if !ok {
			return nil, false
		}
		return staticInvoke(e.right, left, types)
	case *funcExpr:
		return staticInvoke(e, this, types)
	case *binaryExpr:
		if e.op != "|" {
			return nil, false
		}
		l, okL := staticTypes(e.left, this, types)
		r, okR := staticTypes(e.right, this, types)
		return append(l, r...), okL && okR
	}
	return nil, false
}

// staticInvoke is invoke's: a member name or where() applied to values of
// the types in input.
func staticInvoke(e expr, input []string, types TypeResolver) ([]string, bool) {
	switch e := e.(type) {
	case *memberExpr:
		if input == nil {
			return nil, false
		}
		var out []string
		for _, parent := range input {
			ts, ok := types.ElementType(parent, e.name)
			if !ok {
				return nil, false
			}
			for _, t := range ts {
				if t == "BackboneElement" || t == "Element" {
					t = parent + "." + e.name
				}
				out = append(out, t)
			}
		}
		return out, true
	case *funcExpr:
		if e.fn.name == "where" && input != nil {
			return input, true
		}
	}
	return nil, false
}
