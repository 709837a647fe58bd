package search

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"smartfhir/internal/fhirpath"
)

// Number parameters (R4 search.html#number).
//
// Index: the value as a float64.
//
// Query: without a prefix (or with eq) a value matches within its implicit
// precision: "100" is [99.5, 100.5), "100.00" is [99.995, 100.005). ne is
// the complement; gt, lt, ge, le compare exactly; sa and eb are gt and lt;
// ap is within 10% of the value.

func indexNumber(ix *Index, param string, grp int, n fhirpath.Node) {
	if f, ok := numberValue(n.Value); ok {
		ix.Numbers = append(ix.Numbers, NumberRow{Param: param, Group: grp, Value: f})
	}
}

func numberValue(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	}
	return 0, false
}

// parseNumber reads a search number and its precision: half a unit of its
// last significant digit.
func parseNumber(s string) (value, halfUnit float64, ok bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, 0, false
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		if exp, err = strconv.Atoi(s[i+1:]); err != nil {
			return 0, 0, false
		}
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	return f, 0.5 * math.Pow(10, float64(exp-decimals)), true
}

// numberWhere is the condition on the ColValue of a number or quantity row.
func numberWhere(prefix, num string) (Expr, error) {
	x, half, ok := parseNumber(num)
	if !ok {
		return nil, invalidf("%q is not a number", num)
	}
	c := func(op Op, v float64) Expr { return Cmp{ColValue, op, v} }
	within := And{c(Ge, x-half), c(Lt, x+half)}
	switch prefix {
	case "eq":
		return within, nil
	case "ne":
		return Not{within}, nil
	case "gt", "sa":
		return c(Gt, x), nil
	case "lt", "eb":
		return c(Lt, x), nil
	case "ge":
		return c(Ge, x), nil
	case "le":
		return c(Le, x), nil
	default: // ap
		d := math.Abs(x) / 10
		return And{c(Ge, x-d), c(Le, x+d)}, nil
	}
}

func numberExpr(param, mod string, values []string) (Expr, error) {
	if mod != "" {
		return nil, unsupportedf("the modifier :%s is not supported on number parameters", mod)
	}
	var or Or
	for _, v := range values {
		e, err := numberPart(param, v)
		if err != nil {
			return nil, err
		}
		or = append(or, e)
	}
	return simplify(or), nil
}

func numberPart(row, value string) (Exists, error) {
	prefix, rest := cutPrefix(value)
	w, err := numberWhere(prefix, rest)
	return Exists{NumberTable, row, w}, err
}
