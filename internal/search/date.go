package search

import (
	"math"
	"strings"
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
// (an open end is unbounded). A Timing runs from the earliest of its events
// and its repeat.boundsPeriod's start to the latest of its events and that
// period's end: the spec ignores the schedule and keeps "only the outer
// limits", so every second day from 31-Jan-2013 to 24-Mar-2013 includes
// 1-Feb-2013.
//
// Query: the search value is a range [pl, ph) as well (see searchRange for
// the forms it may take), and each prefix compares the two ranges as the
// spec's table says: eq the resource range lies within the search range; ne
// it does not; gt/lt some of it lies after / before the search range; ge/le
// gt/lt or eq; sa/eb all of it lies after / before; ap the ranges overlap
// once the search range is widened by a tenth of its distance from now.

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
			if lo, hi, ok := periodRange(v); ok {
				add(lo, hi)
			}
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
			// Of the three bounds[x] choices only boundsPeriod is a span of
			// dates; boundsDuration and boundsRange are lengths of time and
			// say nothing of when the schedule runs.
			repeat, _ := v["repeat"].(map[string]any)
			if bounds, ok := repeat["boundsPeriod"].(map[string]any); ok {
				if l, h, ok := periodRange(bounds); ok {
					lo, hi, found = min(lo, l), max(hi, h), true
				}
			}
			if found {
				add(lo, hi)
			}
		}
	}
}

// periodRange is the range of a Period in µs: from its start's low to its
// end's high, a missing start or end leaving that side open. A Period with
// neither, or with one that is not a date, has no range: guessing one could
// only make a search find what it should not.
func periodRange(v map[string]any) (lo, hi int64, ok bool) {
	lo, hi = openLow, openHigh
	start, okS := v["start"].(string)
	end, okE := v["end"].(string)
	if !okS && !okE {
		return 0, 0, false
	}
	if okS {
		if lo, _, ok = dateRange(start); !ok {
			return 0, 0, false
		}
	}
	if okE {
		if _, hi, ok = dateRange(end); !ok {
			return 0, 0, false
		}
	}
	return lo, hi, true
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

// searchRange is the range in µs of a date search value (R4
// search.html#date): yyyy, yyyy-mm, yyyy-mm-dd, or yyyy-mm-ddThh:mm,
// yyyy-mm-ddThh:mm:ss or yyyy-mm-ddThh:mm:ss.fff…, each of the last three
// with or without a time zone (Z or ±hh:mm). Search values are looser than
// the dateTime datatype of stored data on two counts. The spec lets them
// truncate the time to the minute (its own example is lt2013-01-14T10:00),
// and a minute stands for the whole of that minute as a second does for
// its second. And they may leave the time zone out, when "the server's
// local time zone should be assumed": this server keeps and compares every
// instant in UTC, so UTC is the zone it assumes. Such a value is completed
// into a dateTime fhir.ParseDateTime reads, so that both sides agree on
// what a valid date, time and offset are; hours without minutes
// (2013-01-14T10) stay invalid, as the spec's format has no such form.
func searchRange(s string) (lo, hi int64, ok bool) {
	date, clock, hasTime := strings.Cut(s, "T")
	if !hasTime {
		return dateRange(s)
	}
	var zone string
	switch n := len(clock); {
	case strings.HasSuffix(clock, "Z"):
		clock, zone = clock[:n-1], "Z"
	case n >= len("+hh:mm") && (clock[n-6] == '+' || clock[n-6] == '-'):
		clock, zone = clock[:n-6], clock[n-6:]
	default:
		// No zone: UTC is this server's time zone (see above).
		zone = "Z"
	}
	minute := len(clock) == len("hh:mm")
	if minute {
		clock += ":00"
	}
	dt, err := fhir.ParseDateTime(date + "T" + clock + zone)
	if err != nil {
		return 0, 0, false
	}
	l, h := dt.Range()
	if minute {
		h = l.Add(time.Minute)
	}
	return l.UnixMicro(), ceilMicro(h), true
}

// invalidDate is the error of a date search value searchRange refuses; it
// names the forms a date may take, since the likeliest mistake is a form
// of dateTime the spec does not have.
func invalidDate(value string) error {
	return invalidf("%q is not a valid date search value (yyyy, yyyy-mm, yyyy-mm-dd or yyyy-mm-ddThh:mm[:ss[.fff]][Z|±hh:mm])", value)
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
	pl, ph, ok := searchRange(rest)
	if !ok {
		return nil, invalidDate(value)
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
		pl, ph, ok := searchRange(rest)
		if !ok {
			return nil, invalidDate(value)
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
