package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhirpath"
)

var env = fhirpath.Env{Types: fhirpath.SpecTypes}

// Index extracts the index rows of a resource of resourceType from its JSON
// body: one row per value of each of the type's search parameters (values
// of a type the parameter type cannot index, as a few official expressions
// yield, are skipped) and its Patient compartments. The body is decoded
// once. An expression that fails on this resource (a FHIRPath type error on
// unexpected data) contributes no rows rather than failing the write: the
// resource was validated before, and search must not be stricter than
// validation.
func (r *Registry) Index(resourceType string, body []byte) (*Index, error) {
	res, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("search.Index(%s): %w", resourceType, err)
	}
	if rt, _ := res["resourceType"].(string); rt != resourceType {
		return nil, fmt.Errorf("search.Index(%s): the body is a %q", resourceType, rt)
	}
	ix := &Index{}
	for _, p := range r.sorted(resourceType) {
		nodes, err := p.expr.Evaluate(res, env)
		if err != nil {
			continue
		}
		if p.Type == "composite" {
			for g, n := range nodes {
				for _, c := range p.Components {
					vals, err := c.expr.EvaluateAt(res, n, env)
					if err != nil {
						continue
					}
					for _, v := range vals {
						r.indexValue(ix, c.Type, c.Row, c.fold, g+1, v)
					}
				}
			}
			continue
		}
		for _, n := range nodes {
			r.indexValue(ix, p.Type, p.Code, p.fold, 0, n)
		}
	}
	r.indexCompartment(ix, resourceType, res)
	ix.dedup()
	return ix, nil
}

// sorted is the type's parameters that have rows of their own (not
// unions), in code order, so that an Index is deterministic.
func (r *Registry) sorted(resourceType string) []*Param { return r.ordered[resourceType] }

// indexValue adds the rows of one value of a parameter of type typ; fold
// is the parameter's Param.fold.
func (r *Registry) indexValue(ix *Index, typ, param string, fold bool, grp int, n fhirpath.Node) {
	if n.Value == nil {
		return
	}
	switch typ {
	case "token":
		indexToken(ix, param, fold, grp, n)
	case "string":
		indexString(ix, param, grp, n)
	case "date":
		indexDate(ix, param, grp, n)
	case "reference":
		r.indexReference(ix, param, grp, n)
	case "quantity":
		indexQuantity(ix, param, grp, n)
	case "number":
		indexNumber(ix, param, grp, n)
	case "uri":
		indexURI(ix, param, grp, n)
	}
}

// indexCompartment records the patients whose compartment the resource is
// in: the Patient targets of the reference parameters the Patient
// CompartmentDefinition names for its type, and a Patient's own id.
func (r *Registry) indexCompartment(ix *Index, resourceType string, res map[string]any) {
	if resourceType == "Patient" {
		if id, ok := res["id"].(string); ok && id != "" {
			ix.Patients = append(ix.Patients, id)
		}
	}
	for _, param := range r.compartment[resourceType] {
		for _, row := range ix.References {
			if row.Param == param && row.TargetType == "Patient" {
				ix.Patients = append(ix.Patients, row.TargetID)
			}
		}
	}
}

func (ix *Index) dedup() {
	ix.Tokens = dedup(ix.Tokens)
	ix.Strings = dedup(ix.Strings)
	ix.Dates = dedup(ix.Dates)
	ix.References = dedup(ix.References)
	ix.Quantities = dedup(ix.Quantities)
	ix.Numbers = dedup(ix.Numbers)
	ix.URIs = dedup(ix.URIs)
	slices.Sort(ix.Patients)
	ix.Patients = slices.Compact(ix.Patients)
}

// dedup drops repeated rows, keeping the first of each.
func dedup[T comparable](rows []T) []T {
	if len(rows) < 2 {
		return rows
	}
	seen := make(map[T]struct{}, len(rows))
	out := rows[:0]
	for _, r := range rows {
		if _, ok := seen[r]; !ok {
			seen[r] = struct{}{}
			out = append(out, r)
		}
	}
	return out
}

// str returns m[key] when it is a string.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// Compartments returns the patients whose compartment a resource of
// resourceType (a stored body: compact JSON) is in, as Index would find them, at a fraction of its cost:
// only the type's compartment parameters are evaluated, over only the
// top-level members that can hold a reference (those whose JSON contains
// a "reference" key) plus id. A reference parameter matches Reference
// elements alone, so the members left out cannot change the answer. The
// access policy uses it to check a read against a patient's compartment.
func (r *Registry) Compartments(resourceType string, body []byte) ([]string, error) {
	res := map[string]any{}
	err := fhir.CompactMembers(body, func(name string, val []byte) error {
		if name != "resourceType" && name != "id" && !bytes.Contains(val, []byte(`"reference"`)) {
			return nil
		}
		// Numbers decode as float64 here, not json.Number as in Index:
		// only Reference elements matter to the compartment parameters.
		var v any
		if err := json.Unmarshal(val, &v); err != nil {
			return err
		}
		res[name] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search.Compartments(%s): %w", resourceType, err)
	}
	if rt, _ := res["resourceType"].(string); rt != resourceType {
		return nil, fmt.Errorf("search.Compartments(%s): the body is a %q", resourceType, rt)
	}
	ix := &Index{}
	for _, code := range r.compartment[resourceType] {
		p := r.byType[resourceType][code]
		if p == nil {
			continue
		}
		nodes, err := p.expr.Evaluate(res, env)
		if err != nil {
			continue // as Index: an expression that fails adds no rows
		}
		for _, n := range nodes {
			r.indexValue(ix, p.Type, p.Code, p.fold, 0, n)
		}
	}
	r.indexCompartment(ix, resourceType, res)
	slices.Sort(ix.Patients)
	return slices.Compact(ix.Patients), nil
}

// OnlyCompartments reports whether e is made of Compartment conditions
// alone (under And and Or): then Match needs nothing of a resource's
// index but its Patients.
func OnlyCompartments(e Expr) bool {
	switch e := e.(type) {
	case Compartment:
		return true
	case And:
		return !slices.ContainsFunc(e, func(x Expr) bool { return !OnlyCompartments(x) })
	case Or:
		return !slices.ContainsFunc(e, func(x Expr) bool { return !OnlyCompartments(x) })
	}
	return false
}
