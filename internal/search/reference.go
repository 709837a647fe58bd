package search

import (
	"strings"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhir/spec"
	"smartfhir/internal/fhirpath"
)

// Reference parameters (R4 search.html#reference).
//
// Index: a reference to a resource here ("Type/id", an absolute URL on our
// base, with or without _history) is a row with TargetType and TargetID;
// any other absolute reference or canonical is a row with URL. Contained
// ("#id") and unresolved urn:uuid references have no row.
//
// Query: "Type/id" or an absolute URL on our base matches the target; a
// bare id matches that id in any type the parameter may point to (or the
// type of a :Type modifier); another absolute URL matches it literally.

func (r *Registry) indexReference(ix *Index, param string, grp int, n fhirpath.Node) {
	var ref string
	switch v := n.Value.(type) {
	case string: // canonical, uri
		ref = v
	case map[string]any:
		if n.Type != "Reference" && n.Type != "" {
			return // e.g. Bundle.composition yields the resource itself
		}
		ref = str(v, "reference")
	}
	if ref == "" || strings.HasPrefix(ref, "#") {
		return
	}
	if t, ok := fhir.ParseReference(ref, r.cfg.Base); ok {
		ix.References = append(ix.References, ReferenceRow{Param: param, Group: grp, TargetType: t.Type, TargetID: t.ID})
		return
	}
	if strings.HasPrefix(ref, "urn:uuid:") {
		return // an unresolved Bundle-local reference
	}
	if strings.Contains(ref, ":") {
		ix.References = append(ix.References, ReferenceRow{Param: param, Group: grp, URL: ref})
	}
}

// referenceWhere is the condition on a reference row for one value; typ
// is the :Type modifier ("" when absent).
func (r *Registry) referenceWhere(typ, value string) (Expr, error) {
	v := unescape(value)
	if v == "" {
		return nil, invalidf("empty reference")
	}
	if t, ok := fhir.ParseReference(v, r.cfg.Base); ok {
		if typ != "" && t.Type != typ {
			return nil, invalidf("reference %q is not to a %s", v, typ)
		}
		return And{Cmp{ColTargetType, Eq, t.Type}, Cmp{ColTargetID, Eq, t.ID}}, nil
	}
	if fhir.ValidID(v) {
		if typ != "" {
			return And{Cmp{ColTargetType, Eq, typ}, Cmp{ColTargetID, Eq, v}}, nil
		}
		return Cmp{ColTargetID, Eq, v}, nil
	}
	if strings.Contains(v, ":") {
		return Cmp{ColURL, Eq, v}, nil
	}
	return nil, invalidf("%q is not a reference", v)
}

func (r *Registry) referenceExpr(p *Param, mod string, values []string) (Expr, error) {
	typ := ""
	switch {
	case mod == "":
	case spec.IsResourceType(mod):
		typ = mod
	default:
		return nil, unsupportedf("the modifier :%s is not supported on reference parameters", mod)
	}
	var or Or
	for _, v := range values {
		w, err := r.referenceWhere(typ, v)
		if err == nil && typ == "" && len(p.Targets) == 1 && fhir.ValidID(unescape(v)) {
			// A bare id of a parameter with one target type names a
			// resource of that type (R4 search.html#reference). Naming
			// the type also lets the database walk the index entries of
			// one target in rid order.
			w, err = r.referenceWhere(p.Targets[0], v)
		}
		if err != nil {
			return nil, err
		}
		or = append(or, Exists{ReferenceTable, p.Code, w})
	}
	return simplify(or), nil
}

func (r *Registry) referencePart(row, value string) (Exists, error) {
	w, err := r.referenceWhere("", value)
	return Exists{ReferenceTable, row, w}, err
}
