package search

import (
	"strings"

	"smartfhir/internal/fhirpath"
)

// URI parameters (R4 search.html#uri).
//
// Index: the uri as written.
//
// Query: the default match is exact; :below matches uris that start with
// the value; :above matches uris the value starts with, at "/" boundaries
// (the value itself and each of its parents).

func indexURI(ix *Index, param string, grp int, n fhirpath.Node) {
	if s, ok := n.Value.(string); ok && s != "" {
		ix.URIs = append(ix.URIs, URIRow{Param: param, Group: grp, Value: s})
	}
}

func uriWhere(mod, value string) (Expr, error) {
	v := unescape(value)
	switch mod {
	case "":
		return Cmp{ColValue, Eq, v}, nil
	case "below":
		return Cmp{ColValue, Prefix, v}, nil
	case "above":
		var parents []string
		for s := v; s != ""; {
			parents = append(parents, s)
			i := strings.LastIndexByte(s, '/')
			if i <= 0 || strings.HasSuffix(s[:i], "/") || !strings.Contains(s[:i], "/") {
				break // stop at the scheme's "//"
			}
			s = s[:i]
		}
		return Cmp{ColValue, In, parents}, nil
	}
	return nil, unsupportedf("the modifier :%s is not supported on uri parameters", mod)
}

func uriExpr(param, mod string, values []string) (Expr, error) {
	var or Or
	for _, v := range values {
		w, err := uriWhere(mod, v)
		if err != nil {
			return nil, err
		}
		or = append(or, Exists{URITable, param, w})
	}
	return simplify(or), nil
}

func uriPart(row, value string) (Exists, error) {
	w, err := uriWhere("", value)
	return Exists{URITable, row, w}, err
}
