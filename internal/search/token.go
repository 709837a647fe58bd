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

// TextRow is the row name of a token parameter's text for :text.
func TextRow(param string) string { return param + ":text" }

// OfTypeRow is the row name of a token parameter's identifier types.
func OfTypeRow(param string) string { return param + ":of-type" }

func indexToken(ix *Index, param string, grp int, n fhirpath.Node) {
	switch v := n.Value.(type) {
	case string:
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
// A backslash escapes a "|" that is part of the system or code.
func tokenWhere(value string) (Expr, error) {
	parts := splitEscaped(value, '|')
	switch len(parts) {
	case 1:
		return Cmp{ColCode, Eq, unescape(parts[0])}, nil
	case 2:
		system, code := unescape(parts[0]), unescape(parts[1])
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
// :of-type (identifier type system|code|value).
func tokenExpr(param, mod string, values []string) (Expr, error) {
	var or Or
	for _, v := range values {
		switch mod {
		case "", "not":
			w, err := tokenWhere(v)
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
func tokenPart(row, value string) (Exists, error) {
	w, err := tokenWhere(value)
	return Exists{TokenTable, row, w}, err
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
