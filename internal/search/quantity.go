package search

import (
	"smartfhir/internal/fhirpath"
)

// Quantity parameters (R4 search.html#quantity).
//
// Index: the value with its system and code; where the unit differs from
// the code, a second row with no system and the unit as code, so that
// "5.4||mg" finds a quantity whose human-readable unit is mg.
//
// Query: "[prefix]number|system|code" compares the number as number
// parameters do, and, when given, the system and code; "number||code"
// matches the code or unit in any system.

func indexQuantity(ix *Index, param string, grp int, n fhirpath.Node) {
	m, ok := n.Value.(map[string]any)
	if !ok {
		return
	}
	f, ok := numberValue(m["value"])
	if !ok {
		return
	}
	system, code, unit := str(m, "system"), str(m, "code"), str(m, "unit")
	if n.Type == "Money" {
		code = str(m, "currency")
		system = "urn:iso:std:iso:4217"
	}
	ix.Quantities = append(ix.Quantities, QuantityRow{Param: param, Group: grp, Value: f, System: system, Code: code})
	if unit != "" && unit != code {
		ix.Quantities = append(ix.Quantities, QuantityRow{Param: param, Group: grp, Value: f, Code: unit})
	}
}

func quantityWhere(value string) (Expr, error) {
	parts := splitEscaped(value, '|')
	if len(parts) != 1 && len(parts) != 3 {
		return nil, invalidf("quantity %q is not number or number|system|code", value)
	}
	prefix, num := cutPrefix(parts[0])
	w, err := numberWhere(prefix, num)
	if err != nil {
		return nil, err
	}
	and := And{w}
	if len(parts) == 3 {
		if s := unescape(parts[1]); s != "" {
			and = append(and, Cmp{ColSystem, Eq, s})
		}
		if c := unescape(parts[2]); c != "" {
			and = append(and, Cmp{ColCode, Eq, c})
		}
	}
	if len(and) == 1 {
		return w, nil
	}
	return and, nil
}

func quantityExpr(param, mod string, values []string) (Expr, error) {
	if mod != "" {
		return nil, unsupportedf("the modifier :%s is not supported on quantity parameters", mod)
	}
	var or Or
	for _, v := range values {
		e, err := quantityPart(param, v)
		if err != nil {
			return nil, err
		}
		or = append(or, e)
	}
	return simplify(or), nil
}

func quantityPart(row, value string) (Exists, error) {
	w, err := quantityWhere(value)
	return Exists{QuantityTable, row, w}, err
}
