package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"smartfhir/internal/fhirpath"
)

// String parameters (R4 search.html#string).
//
// Index: one row per string; a HumanName gives a row for each of family,
// given, prefix, suffix and text, an Address one for each line, city,
// district, state, postalCode, country and text, so that a search matches
// any part. Norm is the value lower-cased without accents, what the default
// (starts-with) and :contains match; Exact is the value as written, for
// :exact.

var nameParts = []string{"family", "given", "prefix", "suffix", "text"}
var addressParts = []string{"line", "city", "district", "state", "postalCode", "country", "text"}

func indexString(ix *Index, param string, grp int, n fhirpath.Node) {
	add := func(s string) {
		if s != "" {
			ix.Strings = append(ix.Strings, StringRow{Param: param, Group: grp, Norm: normalize(s), Exact: s})
		}
	}
	switch v := n.Value.(type) {
	case string:
		add(v)
	case map[string]any:
		parts := nameParts
		if n.Type == "Address" {
			parts = addressParts
		}
		for _, k := range parts {
			switch pv := v[k].(type) {
			case string:
				add(pv)
			case []any:
				for _, s := range pv {
					if s, ok := s.(string); ok {
						add(s)
					}
				}
			}
		}
	}
}

// normalize folds s for the default string match: lower case, accents
// removed (NFD, then combining marks dropped), as R4 search.html#string
// asks ("case- and accent-insensitive").
func normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// stringWhere is the condition on a string row for one value.
func stringWhere(mod, value string) (Expr, error) {
	v := unescape(value)
	switch mod {
	case "":
		return Cmp{ColNorm, Prefix, normalize(v)}, nil
	case "exact":
		return Cmp{ColExact, Eq, v}, nil
	case "contains":
		return Cmp{ColNorm, Contains, normalize(v)}, nil
	}
	return nil, unsupportedf("the modifier :%s is not supported on string parameters", mod)
}

func stringExpr(param, mod string, values []string) (Expr, error) {
	var or Or
	for _, v := range values {
		w, err := stringWhere(mod, v)
		if err != nil {
			return nil, err
		}
		or = append(or, Exists{StringTable, param, w})
	}
	return simplify(or), nil
}

func stringPart(row, value string) (Exists, error) {
	w, err := stringWhere("", value)
	return Exists{StringTable, row, w}, err
}
