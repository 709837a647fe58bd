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
			found, err := db.include(ctx, qr, inc, src)
			if err != nil {
				return nil, err
			}
			add(found)
		}
		for _, inc := range q.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			found, err := db.revinclude(ctx, qr, inc, frontier)
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
func (db *DB) include(ctx context.Context, qr Querier, inc search.Include, src []included) ([]included, error) {
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
	if inc.Param != "*" {
		sb.WriteString(" AND x.param = ?")
		args = append(args, inc.Param)
	}
	if inc.Target != "" {
		sb.WriteString(" AND x.target_type = ?")
		args = append(args, inc.Target)
	}
	sb.WriteString(" ORDER BY t.rid LIMIT ?")
	args = append(args, maxIncluded)
	rows, err := qr.Query(ctx, db.rb.rebind(sb.String()), args...)
	if err != nil {
		return nil, err
	}
	return scanIncluded(rows)
}

// revinclude finds the resources of type inc.Source that refer to the
// resources in src through inc.Param.
func (db *DB) revinclude(ctx context.Context, qr Querier, inc search.Include, src []included) ([]included, error) {
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
	for _, typ := range order {
		ids := byType[typ]
		var sb strings.Builder
		sb.WriteString("SELECT DISTINCT " + versionColumns + ` FROM search_reference x
JOIN resources t ON t.rid = x.rid
JOIN resource_versions v ON v.rid = t.rid AND v.version_id = t.version_id
WHERE x.target_type = ? AND x.target_id IN (?` + strings.Repeat(", ?", len(ids)-1) + ")")
		args := append([]any{typ}, ids...)
		if inc.Source != "*" {
			sb.WriteString(" AND x.type = ?")
			args = append(args, inc.Source)
		}
		if inc.Param != "*" {
			sb.WriteString(" AND x.param = ?")
			args = append(args, inc.Param)
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
