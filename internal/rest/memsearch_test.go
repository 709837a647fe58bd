package rest_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// The memStore's search evaluates the query tree in Go over the rows
// search.Registry.Index extracts: a second implementation of the store's
// side of the contract, small enough for the REST tests. It supports what
// those tests use: conditions, _total and paging in creation order; _sort
// and includes are the SQL stores' (tested in storetest).

var testRegistry = sync.OnceValue(func() *search.Registry {
	r, err := search.NewRegistry(search.Config{})
	if err != nil {
		panic(err)
	}
	return r
})

func (s *memStore) Search(ctx context.Context, q *search.Query) (*store.SearchResult, error) {
	return s.search(q, nil)
}

func (tx *memTx) Search(ctx context.Context, q *search.Query) (*store.SearchResult, error) {
	return tx.s.search(q, tx.order)
}

type memDoc struct {
	v  *store.Version
	ix *search.Index
}

// search runs q on the committed resources overlaid with pending writes.
func (s *memStore) search(q *search.Query, pending []*store.Version) (*store.SearchResult, error) {
	if len(q.Sort) > 0 || len(q.Include) > 0 || len(q.RevInclude) > 0 {
		return nil, fhir.Errorf(fhir.NotSupported, "the test store does not sort or include")
	}
	s.mu.RLock()
	current := map[string]*store.Version{}
	var order []string
	for _, v := range s.all {
		k := key(v.Type, v.ID)
		if _, ok := current[k]; !ok {
			order = append(order, k)
		}
		current[k] = v
	}
	s.mu.RUnlock()
	for _, v := range pending {
		k := key(v.Type, v.ID)
		if _, ok := current[k]; !ok {
			order = append(order, k)
		}
		current[k] = v
	}
	docs := map[string]memDoc{}
	var list []memDoc
	for _, k := range order {
		v := current[k]
		if v.Deleted {
			continue
		}
		ix, err := testRegistry().Index(v.Type, v.Body)
		if err != nil {
			return nil, err
		}
		d := memDoc{v: clone(v), ix: ix}
		docs[k] = d
		list = append(list, d)
	}
	e := &memEval{docs: docs, list: list}
	var matches []*store.Version
	for _, d := range list {
		if d.v.Type == q.Type && e.eval(d, q.Where) {
			matches = append(matches, d.v)
		}
	}
	res := &store.SearchResult{Total: -1}
	if q.Total != search.TotalNone {
		res.Total = len(matches)
	}
	start := 0
	if q.Cursor != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.Cursor, "m"))
		if err != nil || n < 0 || n > len(matches) {
			return nil, fhir.Errorf(fhir.Invalid, "bad cursor")
		}
		start = n
	}
	end := min(start+q.Count, len(matches))
	res.Matches = matches[start:end]
	if end < len(matches) {
		res.Next = fmt.Sprintf("m%d", end)
	}
	if start > 0 {
		res.Prev = fmt.Sprintf("m%d", max(0, start-q.Count))
	}
	return res, nil
}

type memEval struct {
	docs map[string]memDoc
	list []memDoc
}

func (e *memEval) eval(d memDoc, x search.Expr) bool {
	switch x := x.(type) {
	case search.And:
		for _, y := range x {
			if !e.eval(d, y) {
				return false
			}
		}
		return true
	case search.Or:
		for _, y := range x {
			if e.eval(d, y) {
				return true
			}
		}
		return false
	case search.Not:
		return !e.eval(d, x.X)
	case search.Cmp:
		switch x.Col {
		case search.ColID:
			return cmpValue(d.v.ID, x)
		case search.ColLastUpdated:
			return cmpValue(d.v.LastUpdated.UnixMicro(), x)
		}
		return false
	case search.Exists:
		for _, row := range rows(d.ix, x.Table, x.Param, -1) {
			if x.Where == nil || rowMatches(row, x.Where) {
				return true
			}
		}
		return false
	case search.Composite:
		groups := map[int]int{}
		for i, p := range x.Parts {
			for _, row := range rows(d.ix, p.Table, p.Param, -1) {
				if groups[row.group] == i && (p.Where == nil || rowMatches(row, p.Where)) {
					groups[row.group] = i + 1
				}
			}
		}
		for _, n := range groups {
			if n == len(x.Parts) {
				return true
			}
		}
		return false
	case search.Chain:
		for _, row := range rows(d.ix, search.ReferenceTable, x.Param, -1) {
			if row.cols[search.ColTargetType] != x.TargetType {
				continue
			}
			if t, ok := e.docs[key(x.TargetType, row.cols[search.ColTargetID].(string))]; ok && e.eval(t, x.Where) {
				return true
			}
		}
		return false
	case search.Has:
		for _, s := range e.list {
			if s.v.Type != x.Type {
				continue
			}
			for _, row := range rows(s.ix, search.ReferenceTable, x.Param, -1) {
				if row.cols[search.ColTargetType] == d.v.Type && row.cols[search.ColTargetID] == d.v.ID && e.eval(s, x.Where) {
					return true
				}
			}
		}
		return false
	case search.Compartment:
		return slices.Contains(d.ix.Patients, x.Patient)
	}
	return false
}

type memRow struct {
	group int
	cols  map[search.Column]any
}

func rows(ix *search.Index, t search.Table, param string, _ int) []memRow {
	var out []memRow
	switch t {
	case search.TokenTable:
		for _, r := range ix.Tokens {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColSystem: r.System, search.ColCode: r.Code}})
			}
		}
	case search.StringTable:
		for _, r := range ix.Strings {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColNorm: r.Norm, search.ColExact: r.Exact}})
			}
		}
	case search.DateTable:
		for _, r := range ix.Dates {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColLow: r.Low, search.ColHigh: r.High}})
			}
		}
	case search.ReferenceTable:
		for _, r := range ix.References {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColTargetType: r.TargetType, search.ColTargetID: r.TargetID, search.ColURL: r.URL}})
			}
		}
	case search.QuantityTable:
		for _, r := range ix.Quantities {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColValue: r.Value, search.ColSystem: r.System, search.ColCode: r.Code}})
			}
		}
	case search.NumberTable:
		for _, r := range ix.Numbers {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColValue: r.Value}})
			}
		}
	case search.URITable:
		for _, r := range ix.URIs {
			if r.Param == param {
				out = append(out, memRow{r.Group, map[search.Column]any{search.ColValue: r.Value}})
			}
		}
	}
	return out
}

func rowMatches(r memRow, x search.Expr) bool {
	switch x := x.(type) {
	case search.And:
		for _, y := range x {
			if !rowMatches(r, y) {
				return false
			}
		}
		return true
	case search.Or:
		for _, y := range x {
			if rowMatches(r, y) {
				return true
			}
		}
		return false
	case search.Not:
		return !rowMatches(r, x.X)
	case search.Cmp:
		v, ok := r.cols[x.Col]
		return ok && cmpValue(v, x)
	}
	return false
}

func cmpValue(v any, c search.Cmp) bool {
	switch c.Op {
	case search.Prefix:
		s, _ := v.(string)
		return strings.HasPrefix(s, c.Value.(string))
	case search.Contains:
		s, _ := v.(string)
		return strings.Contains(s, c.Value.(string))
	case search.In:
		s, _ := v.(string)
		return slices.Contains(c.Value.([]string), s)
	}
	var cmp int
	switch v := v.(type) {
	case string:
		cmp = strings.Compare(v, c.Value.(string))
	case int64:
		w := c.Value.(int64)
		cmp = compare(v, w)
	case float64:
		w := c.Value.(float64)
		cmp = compare(v, w)
	default:
		return false
	}
	switch c.Op {
	case search.Eq:
		return cmp == 0
	case search.Ne:
		return cmp != 0
	case search.Lt:
		return cmp < 0
	case search.Le:
		return cmp <= 0
	case search.Gt:
		return cmp > 0
	case search.Ge:
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
