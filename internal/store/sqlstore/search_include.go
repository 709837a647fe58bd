package sqlstore

import (
	"context"
	"strings"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// includes answers _include and _revinclude (R4 search.html#include) for
// a page of matches: the resources the matches refer to through the named
// reference parameters, and the resources that refer to the matches.
// Iterating includes also apply to what was included, for a few rounds.
// Each resource appears once, and never when it is a match already.
func (db *DB) includes(ctx context.Context, qr Querier, q *search.Query, matches []match) ([]*store.Version, error) {
	seen := map[int64]bool{}
	var frontier []included
	for _, m := range matches {
		seen[m.rid] = true
		frontier = append(frontier, included{rid: m.rid, v: m.v})
	}
	var out []*store.Version
	all := frontier
	for round := 0; round < maxIterate && len(frontier) > 0 && len(out) < maxIncluded; round++ {
		var next []included
		add := func(list []included) {
			for _, it := range list {
				if !seen[it.rid] && len(out) < maxIncluded {
					seen[it.rid] = true
					next = append(next, it)
					out = append(out, it.v)
				}
			}
		}
		for _, inc := range q.Include {
			if round > 0 && !inc.Iterate {
				continue
			}
			src := frontier
			if round == 0 && inc.Iterate {
				src = all
			}
			found, err := db.include(ctx, qr, q, inc, src)
			if err != nil {
				return nil, err
			}
			add(found)
		}
		for _, inc := range q.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			found, err := db.revinclude(ctx, qr, q, inc, frontier)
			if err != nil {
				return nil, err
			}
			add(found)
		}
		frontier = next
		all = append(all, next...)
	}
	return out, nil
}

type included struct {
	rid int64
	v   *store.Version
}

const versionColumns = "t.rid, t.type, t.id, t.version_id, t.last_updated, v.method, v.body"

func scanIncluded(rows Rows) ([]included, error) {
	defer rows.Close()
	var out []included
	for rows.Next() {
		it := included{v: &store.Version{}}
		var lu int64
		if err := rows.Scan(&it.rid, &it.v.Type, &it.v.ID, &it.v.VersionID, &lu, &it.v.Method, &it.v.Body); err != nil {
			return nil, err
		}
		it.v.LastUpdated = fromMicro(lu)
		out = append(out, it)
	}
	return out, rows.Err()
}

// include follows the references of the resources in src of type
// inc.Source.
func (db *DB) include(ctx context.Context, qr Querier, q *search.Query, inc search.Include, src []included) ([]included, error) {
	var rids []any
	for _, it := range src {
		if inc.Source == "*" || it.v.Type == inc.Source {
			rids = append(rids, it.rid)
		}
	}
	if len(rids) == 0 {
		return nil, nil
	}
	var sb strings.Builder
	sb.WriteString("SELECT DISTINCT " + versionColumns + ` FROM search_reference x
JOIN resources t ON t.type = x.target_type AND t.id = x.target_id
JOIN resource_versions v ON v.rid = t.rid AND v.version_id = t.version_id
WHERE t.deleted = ? AND x.rid IN (?` + strings.Repeat(", ?", len(rids)-1) + ")")
	args := append([]any{false}, rids...)
	keys := db.paramKeys()
	if inc.Param != "*" {
		// The parameter of the source type, or of each type that has it.
		pids := keys.keys(inc.Param)
		if inc.Source != "*" {
			pids = []int64{keys.key(inc.Source, inc.Param)}
		}
		if len(pids) == 0 {
			return nil, nil
		}
		sb.WriteString(" AND x.pid IN (?" + strings.Repeat(", ?", len(pids)-1) + ")")
		for _, pid := range pids {
			args = append(args, pid)
		}
	}
	if inc.Target != "" {
		sb.WriteString(" AND x.target_type = ?")
		args = append(args, inc.Target)
	}
	if q.Access != nil {
		// Only the referenced types the policy lets the request see, and of
		// each only the resources it makes visible.
		types := []string{inc.Target}
		if inc.Target == "" {
			var err error
			if types, err = db.distinctTypes(ctx, qr, "x.target_type", includeWhere(&sb), args); err != nil {
				return nil, err
			}
		}
		var ok bool
		var err error
		if args, ok, err = visibleTypes(&sb, args, q.Access, keys, types); err != nil || !ok {
			return nil, err
		}
	}
	sb.WriteString(" ORDER BY t.rid LIMIT ?")
	args = append(args, maxIncluded)
	rows, err := qr.Query(ctx, db.rb.rebind(sb.String()), args...)
	if err != nil {
		return nil, err
	}
	return scanIncluded(rows)
}

// distinctTypes lists the values of col (t.type or x.target_type) over the
// reference rows a _include or _revinclude query reads (where is its WHERE
// clause, on search_reference x and resources t).
func (db *DB) distinctTypes(ctx context.Context, qr Querier, col, where string, args []any) ([]string, error) {
	rows, err := qr.Query(ctx, db.rb.rebind("SELECT DISTINCT "+col+` FROM search_reference x
JOIN resources t ON `+includeJoin(col)+" "+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// includeWhere is the WHERE clause of an include query built so far (its
// SELECT list and joins are constant text without the word WHERE).
func includeWhere(sb *strings.Builder) string {
	s := sb.String()
	return s[strings.Index(s, "WHERE"):]
}

// includeJoin is the join of resources t in an include (t is the target)
// or revinclude (t is the referring resource) query.
func includeJoin(col string) string {
	if col == "x.target_type" {
		return "t.type = x.target_type AND t.id = x.target_id"
	}
	return "t.rid = x.rid"
}

// visibleTypes appends to an include query the access policy's condition
// on t: (t.type = ? AND cond) for each of types that the policy shows. It
// reports false when it shows none of them.
func visibleTypes(sb *strings.Builder, args []any, access search.Visibility, keys paramKeys, types []string) ([]any, bool, error) {
	b := &sqlBuilder{access: access, keys: keys}
	n := 0
	for _, typ := range types {
		cond, ok := access.Visible(typ)
		if !ok || typ == "" {
			continue
		}
		if n > 0 {
			b.sb.WriteString(" OR ")
		}
		n++
		b.sb.WriteString("(t.type = ?")
		b.args = append(b.args, typ)
		if cond != nil {
			b.setType("t", typ)
			b.sb.WriteString(" AND ")
			if err := b.expr("t", cond); err != nil {
				return nil, false, err
			}
		}
		b.sb.WriteString(")")
	}
	if n == 0 {
		return args, false, nil
	}
	sb.WriteString(" AND (" + b.sb.String() + ")")
	return append(args, b.args...), true, nil
}

// revinclude finds the resources of type inc.Source that refer to the
// resources in src through inc.Param.
func (db *DB) revinclude(ctx context.Context, qr Querier, q *search.Query, inc search.Include, src []included) ([]included, error) {
	byType := map[string][]any{}
	var order []string
	for _, it := range src {
		if inc.Target != "" && it.v.Type != inc.Target {
			continue
		}
		if byType[it.v.Type] == nil {
			order = append(order, it.v.Type)
		}
		byType[it.v.Type] = append(byType[it.v.Type], it.v.ID)
	}
	var out []included
	keys := db.paramKeys()
	for _, typ := range order {
		ids := byType[typ]
		var sb strings.Builder
		sb.WriteString("SELECT DISTINCT " + versionColumns + ` FROM search_reference x
JOIN resources t ON t.rid = x.rid
JOIN resource_versions v ON v.rid = t.rid AND v.version_id = t.version_id
WHERE x.target_type = ? AND x.target_id IN (?` + strings.Repeat(", ?", len(ids)-1) + ")")
		args := append([]any{typ}, ids...)
		switch {
		case inc.Source != "*" && inc.Param != "*":
			sb.WriteString(" AND x.pid = ?")
			args = append(args, keys.key(inc.Source, inc.Param))
		case inc.Source != "*":
			sb.WriteString(" AND t.type = ?")
			args = append(args, inc.Source)
		case inc.Param != "*":
			pids := keys.keys(inc.Param)
			if len(pids) == 0 {
				continue
			}
			sb.WriteString(" AND x.pid IN (?" + strings.Repeat(", ?", len(pids)-1) + ")")
			for _, pid := range pids {
				args = append(args, pid)
			}
		}
		if q.Access != nil {
			types := []string{inc.Source}
			if inc.Source == "*" {
				var err error
				if types, err = db.distinctTypes(ctx, qr, "t.type", includeWhere(&sb), args); err != nil {
					return nil, err
				}
			}
			var ok bool
			var err error
			if args, ok, err = visibleTypes(&sb, args, q.Access, keys, types); err != nil {
				return nil, err
			} else if !ok {
				continue
			}
		}
		sb.WriteString(" ORDER BY t.rid LIMIT ?")
		args = append(args, maxIncluded)
		rows, err := qr.Query(ctx, db.rb.rebind(sb.String()), args...)
		if err != nil {
			return nil, err
		}
		found, err := scanIncluded(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}
