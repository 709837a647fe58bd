package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"smartfhir/internal/fhir"
)

func (c *evalCtx) binary(e *binaryExpr) ([]Node, error) {
	left, err := c.eval(e.left)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and", "or", "xor", "implies":
		return c.logic(e, left)
	}
	right, err := c.eval(e.right)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "|":
		return union(left, right), nil
	case "=", "!=":
		if len(left) == 0 || len(right) == 0 {
			return nil, nil
		}
		eq, known := equalCollections(left, right)
		if !known {
			return nil, nil
		}
		return boolNode(eq == (e.op == "=")), nil
	case "~", "!~":
		return boolNode(equivalentCollections(left, right) == (e.op == "~")), nil
	case "<", ">", "<=", ">=":
		return compareOp(e.op, left, right)
	case "in", "contains":
		item, coll := left, right
		if e.op == "contains" {
			item, coll = right, left
		}
		it, ok, err := singleton(item, "'"+e.op+"'")
		if err != nil || !ok {
			return nil, err
		}
		for _, n := range coll {
			if eq, known := equalItems(it, n); known && eq {
				return boolNode(true), nil
			}
		}
		return boolNode(false), nil
	}
	return arithmetic(e.op, left, right)
}

// logic is the three-valued Boolean logic of FHIRPath ("Boolean logic"), where an empty
// collection is unknown. The right side is not evaluated when the left
// decides the result.
func (c *evalCtx) logic(e *binaryExpr, left []Node) ([]Node, error) {
	l, lKnown, err := truth(left)
	if err != nil {
		return nil, err
	}
	switch {
	case e.op == "and" && lKnown && !l,
		e.op == "or" && lKnown && l:
		return boolNode(l), nil
	case e.op == "implies" && lKnown && !l:
		return boolNode(true), nil
	}
	right, err := c.eval(e.right)
	if err != nil {
		return nil, err
	}
	r, rKnown, err := truth(right)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and":
		switch {
		case rKnown && !r:
			return boolNode(false), nil
		case lKnown && rKnown:
			return boolNode(true), nil
		}
	case "or":
		switch {
		case rKnown && r:
			return boolNode(true), nil
		case lKnown && rKnown:
			return boolNode(false), nil
		}
	case "xor":
		if lKnown && rKnown {
			return boolNode(l != r), nil
		}
	case "implies":
		switch {
		case rKnown && r:
			return boolNode(true), nil
		case lKnown && rKnown: // l is true here
			return boolNode(false), nil
		}
	}
	return nil, nil
}

// union merges two collections without duplicates (FHIRPath "Collections": |).
func union(a, b []Node) []Node {
	out := make([]Node, 0, len(a)+len(b))
	for _, src := range [][]Node{a, b} {
	next:
		for _, n := range src {
			for _, o := range out {
				if eq, known := equalItems(n, o); known && eq {
					continue next
				}
			}
			out = append(out, n)
		}
	}
	return out
}

func equalCollections(a, b []Node) (eq, known bool) {
	if len(a) != len(b) {
		return false, true
	}
	for i := range a {
		eq, known := equalItems(a[i], b[i])
		if !known || !eq {
			return eq, known
		}
	}
	return true, true
}

// equalItems is FHIRPath equality of two items (FHIRPath "Equality"): known is false
// when it cannot be decided, as for dates of different precisions that
// overlap, or for a primitive that has no value.
func equalItems(a, b Node) (eq, known bool) {
	if a.Value == nil || b.Value == nil {
		return false, false
	}
	if isDate(a) && isDate(b) {
		as, aok := a.Value.(string)
		bs, bok := b.Value.(string)
		if aok && bok {
			cmp, known := compareDates(as, bs)
			return cmp == 0, known
		}
	}
	switch av := a.Value.(type) {
	case string:
		bv, ok := b.Value.(string)
		return ok && av == bv, true
	case bool:
		bv, ok := b.Value.(bool)
		return ok && av == bv, true
	case map[string]any:
		return reflect.DeepEqual(a.Value, b.Value), true
	}
	ar, aok := number(a.Value)
	br, bok := number(b.Value)
	if aok && bok {
		return ar.Cmp(br) == 0, true
	}
	return false, true
}

func equivalentCollections(a, b []Node) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
next:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && equivalentItems(x, y) {
				used[j] = true
				continue next
			}
		}
		return false
	}
	return true
}

// equivalentItems is FHIRPath equivalence (FHIRPath "Equivalent"): strings ignore case
// and differences in whitespace; what equality cannot decide is false.
func equivalentItems(a, b Node) bool {
	as, aok := a.Value.(string)
	bs, bok := b.Value.(string)
	if aok && bok && !(isDate(a) && isDate(b)) {
		norm := func(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
		return norm(as) == norm(bs)
	}
	eq, known := equalItems(a, b)
	return known && eq
}

func isDate(n Node) bool {
	switch n.Type {
	case "date", "dateTime", "instant", "System.Date", "System.DateTime":
		return true
	}
	return false
}

// compareDates orders two FHIR dates or dateTimes. Values of the same
// precision compare as instants; of different precisions, only when the
// periods they stand for do not overlap (FHIRPath "Equality", "Comparison").
func compareDates(a, b string) (cmp int, known bool) {
	da, errA := fhir.ParseDateTime(a)
	db, errB := fhir.ParseDateTime(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b), true
	}
	if da.Precision == db.Precision {
		return da.Time.Compare(db.Time), true
	}
	al, ah := da.Range()
	bl, bh := db.Range()
	switch {
	case !ah.After(bl):
		return -1, true
	case !bh.After(al):
		return 1, true
	}
	return 0, false
}

func compareOp(op string, left, right []Node) ([]Node, error) {
	a, aok, err := singleton(left, "'"+op+"'")
	if err != nil {
		return nil, err
	}
	b, bok, err := singleton(right, "'"+op+"'")
	if err != nil || !aok || !bok || a.Value == nil || b.Value == nil {
		return nil, err
	}
	var cmp int
	as, aStr := a.Value.(string)
	bs, bStr := b.Value.(string)
	ar, aNum := number(a.Value)
	br, bNum := number(b.Value)
	switch {
	case aStr && bStr && (isDate(a) || isDate(b)):
		var known bool
		if cmp, known = compareDates(as, bs); !known {
			return nil, nil
		}
	case aStr && bStr:
		cmp = strings.Compare(as, bs)
	case aNum && bNum:
		cmp = ar.Cmp(br)
	default:
		return nil, fmt.Errorf("cannot compare %v with %v", a.Value, b.Value)
	}
	switch op {
	case "<":
		return boolNode(cmp < 0), nil
	case ">":
		return boolNode(cmp > 0), nil
	case "<=":
		return boolNode(cmp <= 0), nil
	}
	return boolNode(cmp >= 0), nil
}

// number reads a numeric JSON value exactly.
func number(v any) (*big.Rat, bool) {
	switch v := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(v))
		return r, ok
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(v) == nil {
			return nil, false
		}
		return r, true
	case int:
		return new(big.Rat).SetInt64(int64(v)), true
	case int64:
		return new(big.Rat).SetInt64(v), true
	}
	return nil, false
}

func isDecimal(n Node) bool {
	switch v := n.Value.(type) {
	case json.Number:
		return strings.ContainsAny(string(v), ".eE")
	case float64:
		return true
	}
	return false
}

// arithmetic implements + - * / div mod on numbers, + and & on strings
// (FHIRPath "Math"). Dates plus quantities are outside the subset.
func arithmetic(op string, left, right []Node) ([]Node, error) {
	a, aok, err := singleton(left, "'"+op+"'")
	if err != nil {
		return nil, err
	}
	b, bok, err := singleton(right, "'"+op+"'")
	if err != nil {
		return nil, err
	}
	if op == "&" {
		// & treats an empty operand as the empty string.
		as, _ := a.Value.(string)
		bs, _ := b.Value.(string)
		if (aok && a.Value != nil && !isString(a)) || (bok && b.Value != nil && !isString(b)) {
			return nil, fmt.Errorf("'&' needs strings")
		}
		return []Node{{Value: as + bs, Type: "System.String"}}, nil
	}
	if !aok || !bok || a.Value == nil || b.Value == nil {
		return nil, nil
	}
	if as, ok := a.Value.(string); ok && op == "+" {
		if bs, ok := b.Value.(string); ok {
			return []Node{{Value: as + bs, Type: "System.String"}}, nil
		}
	}
	x, xok := number(a.Value)
	y, yok := number(b.Value)
	if !xok || !yok {
		return nil, fmt.Errorf("'%s' needs numbers, got %v and %v", op, a.Value, b.Value)
	}
	decimal := isDecimal(a) || isDecimal(b)
	r := new(big.Rat)
	switch op {
	case "+":
		r.Add(x, y)
	case "-":
		r.Sub(x, y)
	case "*":
		r.Mul(x, y)
	case "/":
		if y.Sign() == 0 {
			return nil, nil
		}
		r.Quo(x, y)
		decimal = true
	case "div", "mod":
		if y.Sign() == 0 {
			return nil, nil
		}
		q := new(big.Rat).Quo(x, y)
		// Truncate towards zero.
		t := new(big.Int).Quo(q.Num(), q.Denom())
		if op == "div" {
			r.SetInt(t)
		} else {
			r.Sub(x, new(big.Rat).Mul(y, new(big.Rat).SetInt(t)))
		}
	default:
		return nil, fmt.Errorf("internal error: unknown operator %s", op)
	}
	return []Node{ratNode(r, decimal)}, nil
}

func isString(n Node) bool {
	_, ok := n.Value.(string)
	return ok
}

func ratNode(r *big.Rat, decimal bool) Node {
	if r.IsInt() && !decimal {
		return Node{Value: json.Number(r.Num().String()), Type: "System.Integer"}
	}
	s := r.FloatString(8)
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return Node{Value: json.Number(s), Type: "System.Decimal"}
}

func negate(in []Node) ([]Node, error) {
	n, ok, err := singleton(in, "'-'")
	if err != nil || !ok {
		return nil, err
	}
	r, isNum := number(n.Value)
	if !isNum {
		return nil, fmt.Errorf("'-' needs a number, got %v", n.Value)
	}
	return []Node{ratNode(r.Neg(r), isDecimal(n))}, nil
}
