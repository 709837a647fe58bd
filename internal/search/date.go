package search

import (
	"math"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/fhirpath"
)

// Date parameters (R4 search.html#date).
//
// Index: every value is the range [Low, High) of instants it stands for, in
// microseconds: a date or partial dateTime covers its whole precision
// ("2013-01" is all of January), an instant or full dateTime its second
// (or given fraction), a Period runs from its start's low to its end's high
// (an open end is unbounded), a Timing from its first event to its last.
//
// Query: the search value is a range [pl, ph) as well, and each prefix
// compares the two ranges as the spec's table says: eq the resource range
// lies within the search range; ne it does not; gt/lt some of it lies after
// / before the search range; ge/le gt/lt or eq; sa/eb all of it lies after
// / before; ap the ranges overlap once the search range is widened by a
// tenth of its distance from now.

const (
	openLow  = math.MinInt64
	openHigh = math.MaxInt64
)

func indexDate(ix *Index, param string, grp int, n fhirpath.Node) {
	add := func(lo, hi int64) {
		ix.Dates = append(ix.Dates, DateRow{Param: param, Group: grp, Low: lo, High: hi})
	}
	switch v := n.Value.(type) {
	case string:
		if lo, hi, ok := dateRange(v); ok {
			add(lo, hi)
		}
	case map[string]any:
		switch n.Type {
		case "Period":
			lo, hi := int64(openLow), int64(openHigh)
			start, okS := v["start"].(string)
			end, okE := v["end"].(string)
			if !okS && !okE {
				return
			}
			if okS {
				l, _, ok := dateRange(start)
				if !ok {
					return
				}
				lo = l
			}
			if okE {
				_, h, ok := dateRange(end)
				if !ok {
					return
				}
				hi = h
			}
			add(lo, hi)
		case "Timing":
			lo, hi, found := int64(openHigh), int64(openLow), false
			events, _ := v["event"].([]any)
			for _, e := range events {
				if s, ok := e.(string); ok {
					if l, h, ok := dateRange(s); ok {
						lo, hi, found = min(lo, l), max(hi, h), true
					}
				}
			}
			if found {
				add(lo, hi)
			}
		}
	}
}

// dateRange is the range of a FHIR date, dateTime or instant in µs.
func dateRange(s string) (lo, hi int64, ok bool) {
	dt, err := fhir.ParseDateTime(s)
	if err != nil {
		return 0, 0, false
	}
	l, h := dt.Range()
	return l.UnixMicro(), ceilMicro(h), true
}

func ceilMicro(t time.Time) int64 {
	m := t.UnixMicro()
	if time.UnixMicro(m).Before(t) {
		m++
	}
	return m
}

// prefixes are the comparison prefixes of number, date and quantity values
// (R4 search.html#prefix).
var prefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

// cutPrefix splits a value into its prefix ("eq" when none) and the rest.
func cutPrefix(v string) (prefix, rest string) {
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		for _, p := range prefixes {
			if v[:2] == p {
				return p, v[2:]
			}
		}
	}
	return "eq", v
}

// dateWhere is the condition on a date row (columns ColLow, ColHigh) for
// one value.
func (r *Registry) dateWhere(value string) (Expr, error) {
	prefix, rest := cutPrefix(value)
	pl, ph, ok := dateRange(rest)
	if !ok {
		return nil, invalidf("%q is not a valid date search value", value)
	}
	lo := func(op Op, v int64) Expr { return Cmp{ColLow, op, v} }
	hi := func(op Op, v int64) Expr { return Cmp{ColHigh, op, v} }
	within := And{lo(Ge, pl), hi(Le, ph)}
	switch prefix {
	case "eq":
		return within, nil
	case "ne":
		return Not{within}, nil
	case "gt":
		return hi(Gt, ph), nil
	case "lt":
		return lo(Lt, pl), nil
	case "ge":
		return Or{hi(Gt, ph), within}, nil
	case "le":
		return Or{lo(Lt, pl), within}, nil
	case "sa":
		return lo(Ge, ph), nil
	case "eb":
		return hi(Le, pl), nil
	default: // ap
		al, ah := r.approx(pl, ph)
		return And{lo(Lt, ah), hi(Gt, al)}, nil
	}
}

// approx widens [pl, ph) by a tenth of its distance from now on each side
// (R4 leaves "ap" to the server; this is the spec's suggestion of 10%),
// and by at least a day.
func (r *Registry) approx(pl, ph int64) (int64, int64) {
	now := r.cfg.Now().UnixMicro()
	d := now - pl
	if d < 0 {
		d = -d
	}
	d /= 10
	d = max(d, int64(24*time.Hour/time.Microsecond))
	return pl - d, ph + d
}

func (r *Registry) dateExpr(param, mod string, values []string) (Expr, error) {
	if mod != "" {
		return nil, unsupportedf("the modifier :%s is not supported on date parameters", mod)
	}
	var or Or
	for _, v := range values {
		w, err := r.dateWhere(v)
		if err != nil {
			return nil, err
		}
		or = append(or, Exists{DateTable, param, w})
	}
	return simplify(or), nil
}

func (r *Registry) datePart(row, value string) (Exists, error) {
	w, err := r.dateWhere(value)
	return Exists{DateTable, row, w}, err
}

// lastUpdatedExpr is _lastUpdated: the resource's meta.lastUpdated is an
// instant, so each prefix reduces to comparisons of one column.
func (r *Registry) lastUpdatedExpr(mod string, values []string) (Expr, error) {
	if mod != "" {
		return nil, unsupportedf("the modifier :%s is not supported on _lastUpdated", mod)
	}
	var or Or
	for _, value := range values {
		prefix, rest := cutPrefix(value)
		pl, ph, ok := dateRange(rest)
		if !ok {
			return nil, invalidf("%q is not a valid date search value", value)
		}
		c := func(op Op, v int64) Expr { return Cmp{ColLastUpdated, op, v} }
		within := And{c(Ge, pl), c(Lt, ph)}
		var e Expr
		switch prefix {
		case "eq":
			e = within
		case "ne":
			e = Not{within}
		case "gt", "sa":
			e = c(Ge, ph)
		case "lt", "eb":
			e = c(Lt, pl)
		case "ge":
			e = c(Ge, pl)
		case "le":
			e = c(Lt, ph)
		default:
			al, ah := r.approx(pl, ph)
			e = And{c(Ge, al), c(Lt, ah)}
		}
		or = append(or, e)
	}
	return simplify(or), nil
}
