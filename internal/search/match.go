package search

import (
	"fmt"
	"slices"
	"strings"
)

// Match evaluates e against one resource: its index ix, id and
// meta.lastUpdated (µs since the epoch). It is what the access policy uses
// to check a single resource (a read, or the body of a write) with the
// same conditions searches compile to SQL. Chain and Has need other
// resources and are an error.
func Match(ix *Index, id string, lastUpdated int64, e Expr) (bool, error) {
	switch e := e.(type) {
	case And:
		for _, x := range e {
			if ok, err := Match(ix, id, lastUpdated, x); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case Or:
		for _, x := range e {
			if ok, err := Match(ix, id, lastUpdated, x); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case Not:
		ok, err := Match(ix, id, lastUpdated, e.X)
		return !ok, err
	case Cmp:
		switch e.Col {
		case ColID:
			return cmpValue(id, e), nil
		case ColLastUpdated:
			return cmpValue(lastUpdated, e), nil
		}
		return false, fmt.Errorf("column %d of a resource", e.Col)
	case Exists:
		for _, r := range indexRows(ix, e.Table, e.Param) {
			if e.Where == nil || rowMatch(r, e.Where) {
				return true, nil
			}
		}
		return false, nil
	case Composite:
		// groups[g] counts the parts met in order by group g.
		groups := map[int]int{}
		for i, p := range e.Parts {
			for _, r := range indexRows(ix, p.Table, p.Param) {
				if groups[r.group] == i && (p.Where == nil || rowMatch(r, p.Where)) {
					groups[r.group] = i + 1
				}
			}
		}
		for _, n := range groups {
			if n == len(e.Parts) {
				return true, nil
			}
		}
		return false, nil
	case Compartment:
		return slices.Contains(ix.Patients, e.Patient), nil
	}
	return false, fmt.Errorf("%T cannot be evaluated on one resource", e)
}

type indexRow struct {
	group int
	cols  map[Column]any
}

func indexRows(ix *Index, t Table, param string) []indexRow {
	var out []indexRow
	switch t {
	case TokenTable:
		for _, r := range ix.Tokens {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColSystem: r.System, ColCode: r.Code}})
			}
		}
	case StringTable:
		for _, r := range ix.Strings {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColNorm: r.Norm, ColExact: r.Exact}})
			}
		}
	case DateTable:
		for _, r := range ix.Dates {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColLow: r.Low, ColHigh: r.High}})
			}
		}
	case ReferenceTable:
		for _, r := range ix.References {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColTargetType: r.TargetType, ColTargetID: r.TargetID, ColURL: r.URL}})
			}
		}
	case QuantityTable:
		for _, r := range ix.Quantities {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColValue: r.Value, ColSystem: r.System, ColCode: r.Code}})
			}
		}
	case NumberTable:
		for _, r := range ix.Numbers {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColValue: r.Value}})
			}
		}
	case URITable:
		for _, r := range ix.URIs {
			if r.Param == param {
				out = append(out, indexRow{r.Group, map[Column]any{ColValue: r.Value}})
			}
		}
	}
	return out
}

func rowMatch(r indexRow, e Expr) bool {
	switch e := e.(type) {
	case And:
		for _, x := range e {
			if !rowMatch(r, x) {
				return false
			}
		}
		return true
	case Or:
		for _, x := range e {
			if rowMatch(r, x) {
				return true
			}
		}
		return false
	case Not:
		return !rowMatch(r, e.X)
	case Cmp:
		v, ok := r.cols[e.Col]
		return ok && cmpValue(v, e)
	}
	return false
}

// cmpValue compares as the SQL stores do: strings by bytes, numbers by
// value.
func cmpValue(v any, c Cmp) bool {
	switch c.Op {
	case Prefix:
		s, _ := v.(string)
		p, _ := c.Value.(string)
		return strings.HasPrefix(s, p)
	case Contains:
		s, _ := v.(string)
		p, _ := c.Value.(string)
		return strings.Contains(s, p)
	case In:
		s, _ := v.(string)
		list, _ := c.Value.([]string)
		return slices.Contains(list, s)
	}
	var cmp int
	switch v := v.(type) {
	case string:
		w, ok := c.Value.(string)
		if !ok {
			return false
		}
		cmp = strings.Compare(v, w)
	case int64:
		w, ok := c.Value.(int64)
		if !ok {
			return false
		}
		cmp = compare(v, w)
	case float64:
		w, ok := c.Value.(float64)
		if !ok {
			return false
		}
		cmp = compare(v, w)
	default:
		return false
	}
	switch c.Op {
	case Eq:
		return cmp == 0
	case Ne:
		return cmp != 0
	case Lt:
		return cmp < 0
	case Le:
		return cmp <= 0
	case Gt:
		return cmp > 0
	case Ge:
		return cmp >= 0
	}
	return false
}

func compare[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
