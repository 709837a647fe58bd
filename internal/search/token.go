package search

import (
	"encoding/json"
	"strings"

	"smartfhir/internal/fhirpath"
)

// Token parameters (R4 search.html#token).
//
// Index: one row per code with its system ("" when absent): each coding of
// a CodeableConcept, a Coding, an Identifier (system and value), a
// ContactPoint's value, a code, boolean, id, uri or string. The text of a
// CodeableConcept, the displays of its codings and an Identifier's type
// text are string rows under "<param>:text" for the :text modifier; an
// Identifier's type codings are rows under "<param>:of-type" with System
// "typeSystem|typeCode" and Code the identifier value, for :of-type. The
// components of a composite take no modifiers and have neither.
//
// Codes match exactly (case-sensitively): R4 leaves case-insensitive
// matching to code systems that say so, and none of those we index does.
// But "if the underlying data type is string then the search is not case
// sensitive": a parameter whose values are all FHIR strings or
// ContactPoints (whose value is a string), such as email, phone, telecom,
// Medication's lot-number and the version of the definitional resources,
// matches case-insensitively. Identifier.value is a string too, but an
// identifier is a code of the system that issued it, and R4 searches it
// as one: identifier, like _id, stays case-sensitive.
//
// Whether a parameter's values are strings is decided once, from the
// types its expression's elements have in the R4 definitions
// (stringValued, Param.fold), and the index and the query both follow
// that decision: such a parameter's rows hold its values lower-cased and
// its search values are lower-cased alike. A parameter's rows are thus
// all folded or none, as its conditions are, and every form (code,
// |code, system|code, :not) stays one equality on the code column that
// the stores index; :missing looks at no value. Deciding row by row
// instead would need a marker in each row and a second comparison in
// every token condition, for a mix that no parameter has: no definition
// of R4 or US Core 6.1.0 gives a token parameter both strings and codes
// (TestNoTokenParamMixesStringsAndCodes). A parameter whose expression
// the decision cannot follow (extension(), as, resolve()) stays
// case-sensitive.

// TextRow is the row name of a token parameter's text for :text.
func TextRow(param string) string { return param + ":text" }

// OfTypeRow is the row name of a token parameter's identifier types.
func OfTypeRow(param string) string { return param + ":of-type" }

// indexToken adds the rows of one value n of token parameter param; fold
// says the parameter's values are strings, matched case-insensitively
// (stringValued): its values are then only strings and ContactPoints.
func indexToken(ix *Index, param string, fold bool, grp int, n fhirpath.Node) {
	switch v := n.Value.(type) {
	case string:
		if fold {
			v = foldCase(v)
		}
		ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, Code: v})
	case bool:
		code := "false"
		if v {
			code = "true"
		}
		ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, Code: code})
	case json.Number:
		ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, Code: v.String()})
	case map[string]any:
		switch n.Type {
		case "Identifier":
			value := str(v, "value")
			if value != "" {
				ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, System: str(v, "system"), Code: value})
			}
			if t, ok := v["type"].(map[string]any); ok {
				for _, c := range codings(t) {
					if value != "" && str(c, "code") != "" && grp == 0 {
						ix.Tokens = append(ix.Tokens, TokenRow{Param: OfTypeRow(param), Group: grp,
							System: str(c, "system") + "|" + str(c, "code"), Code: value})
					}
				}
				tokenText(ix, param, grp, str(t, "text"))
			}
		case "ContactPoint":
			if value := str(v, "value"); value != "" {
				if fold {
					value = foldCase(value)
				}
				ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, Code: value})
			}
		case "Coding":
			indexCoding(ix, param, grp, v)
		default: // CodeableConcept, or an untyped value shaped like one
			for _, c := range codings(v) {
				indexCoding(ix, param, grp, c)
			}
			tokenText(ix, param, grp, str(v, "text"))
			if _, ok := v["coding"]; !ok && (str(v, "code") != "" || str(v, "system") != "") {
				indexCoding(ix, param, grp, v)
			}
		}
	}
}

func indexCoding(ix *Index, param string, grp int, c map[string]any) {
	if code := str(c, "code"); code != "" || str(c, "system") != "" {
		ix.Tokens = append(ix.Tokens, TokenRow{Param: param, Group: grp, System: str(c, "system"), Code: code})
	}
	tokenText(ix, param, grp, str(c, "display"))
}

// tokenText adds a text row; composite components (grp > 0) have none,
// since a composite takes no modifiers.
func tokenText(ix *Index, param string, grp int, text string) {
	if text != "" && grp == 0 {
		ix.Strings = append(ix.Strings, StringRow{Param: TextRow(param), Group: grp, Norm: normalize(text), Exact: text})
	}
}

func codings(cc map[string]any) []map[string]any {
	list, _ := cc["coding"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// tokenWhere is the condition on a token row for one value: "code",
// "system|code", "|code" (no system) or "system|" (R4 search.html#token).
// A backslash escapes a "|" that is part of the system or code. fold
// lower-cases the code, for a parameter whose rows hold strings folded so
// (stringValued); the system is never folded: string rows have none.
func tokenWhere(value string, fold bool) (Expr, error) {
	codeOf := unescape
	if fold {
		codeOf = func(s string) string { return foldCase(unescape(s)) }
	}
	parts := splitEscaped(value, '|')
	switch len(parts) {
	case 1:
		return Cmp{ColCode, Eq, codeOf(parts[0])}, nil
	case 2:
		system, code := unescape(parts[0]), codeOf(parts[1])
		switch {
		case code == "":
			return Cmp{ColSystem, Eq, system}, nil
		default:
			return And{Cmp{ColSystem, Eq, system}, Cmp{ColCode, Eq, code}}, nil
		}
	}
	return nil, invalidf("token %q has more than one unescaped |", value)
}

// tokenExpr builds the condition of one token parameter occurrence: the
// OR of its values, with modifiers :not (no value matches, R4: including
// resources without the element), :text (string match on the text) and
// :of-type (identifier type system|code|value). fold is the parameter's
// (stringValued).
func tokenExpr(param, mod string, fold bool, values []string) (Expr, error) {
	var or Or
	for _, v := range values {
		switch mod {
		case "", "not":
			w, err := tokenWhere(v, fold)
			if err != nil {
				return nil, err
			}
			or = append(or, Exists{TokenTable, param, w})
		case "text":
			or = append(or, Exists{StringTable, TextRow(param), Cmp{ColNorm, Prefix, normalize(unescape(v))}})
		case "of-type":
			parts := splitEscaped(v, '|')
			if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
				return nil, invalidf(":of-type wants system|code|value, not %q", v)
			}
			or = append(or, Exists{TokenTable, OfTypeRow(param), And{
				Cmp{ColSystem, Eq, unescape(parts[0]) + "|" + unescape(parts[1])},
				Cmp{ColCode, Eq, unescape(parts[2])},
			}})
		default:
			return nil, unsupportedf("the modifier :%s is not supported on token parameters", mod)
		}
	}
	if mod == "not" {
		return Not{simplify(or)}, nil
	}
	return simplify(or), nil
}

// tokenPart is a token value as a composite component.
func tokenPart(row string, fold bool, value string) (Exists, error) {
	w, err := tokenWhere(value, fold)
	return Exists{TokenTable, row, w}, err
}

// foldCase is a string-valued token as its rows hold it and its search
// values are compared: lower-cased. Case only: R4 asks token strings to
// match case-insensitively, not accent-insensitively as string
// parameters do.
func foldCase(s string) string { return strings.ToLower(s) }

// stringValued reports whether every value of a token parameter (or
// composite component) whose expression is e is a FHIR string or a
// ContactPoint, so that it matches case-insensitively (R4
// search.html#token). from is nil for a parameter, and for a component the
// types of its composite's values. Types come from the R4 definitions
// (fhirpath.Expr.ValueTypes); an expression whose types they do not give
// (as, extension(), resolve() …) stays case-sensitive.
func stringValued(e *fhirpath.Expr, from []string) bool {
	types, ok := e.ValueTypes(from, fhirpath.SpecTypes)
	if !ok || len(types) == 0 {
		return false
	}
	for _, t := range types {
		if t != "string" && t != "ContactPoint" {
			return false
		}
	}
	return true
}

// idExpr is _id: the resource's own id, one of the values.
func idExpr(mod string, values []string) (Expr, error) {
	if mod != "" && mod != "not" {
		return nil, unsupportedf("the modifier :%s is not supported on _id", mod)
	}
	ids := make([]string, len(values))
	for i, v := range values {
		ids[i] = unescape(v)
	}
	var e Expr = Cmp{ColID, Eq, ids[0]}
	if len(ids) > 1 {
		e = Cmp{ColID, In, ids}
	}
	if mod == "not" {
		return Not{e}, nil
	}
	return e, nil
}

// simplify unwraps an Or of one.
func simplify(or Or) Expr {
	if len(or) == 1 {
		return or[0]
	}
	return or
}

// splitEscaped splits s at each sep not preceded by a backslash, keeping
// the escapes (R4 search.html#escaping).
func splitEscaped(s string, sep byte) []string {
	if strings.IndexByte(s, sep) < 0 {
		return []string{s}
	}
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unescape removes the backslashes of \, \| \$ and \\.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`,|$\`, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
