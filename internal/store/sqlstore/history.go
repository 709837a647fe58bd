package sqlstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// History lists versions newest first (store.Store.History, FHIR R4
// http.html#history). Paging is keyset on seq: the cursor holds the last seq
// served, so versions written between pages (which get higher seqs) never
// shift the pages that follow. The cursor also carries the total counted for
// the first page, so Total is counted once per walk and agrees across pages.
//
// Instance history of a resource that never existed is NotFound.
func (db *DB) History(ctx context.Context, q store.HistoryQuery) (page *store.HistoryPage, err error) {
	defer wrap(&err, "store.History(%s/%s)", q.Type, q.ID)
	if q.Count < 1 {
		return nil, fhir.Errorf(fhir.Invalid, "history page size must be at least 1, not %d", q.Count)
	}
	if q.ID != "" && q.Type == "" {
		return nil, fhir.Errorf(fhir.Invalid, "instance history needs a resource type")
	}
	var (
		where []string
		args  []any
	)
	switch {
	case q.ID != "":
		var rid int64
		err := db.drv.QueryRow(ctx, db.q.rid, []any{q.Type, q.ID}, &rid)
		if errors.Is(err, ErrNoRows) {
			return nil, fhir.Errorf(fhir.NotFound, "%s/%s is not known", q.Type, q.ID)
		}
		if err != nil {
			return nil, err
		}
		where, args = append(where, "v.rid = ?"), append(args, rid)
	case q.Type != "":
		where, args = append(where, "v.type = ?"), append(args, q.Type)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "v.last_updated >= ?"), append(args, ceilMicro(q.Since))
	}
	if !q.At.IsZero() {
		end := q.AtEnd
		if !end.After(q.At) { // no range: the instant At itself
			end = q.At.Add(time.Microsecond)
		}
		// [lastUpdated, next version's lastUpdated) meets [At, end): the
		// version starts before end, and no later version of the same
		// resource had replaced it by At.
		where = append(where, "v.last_updated < ?",
			"NOT EXISTS (SELECT 1 FROM resource_versions n WHERE n.rid = v.rid AND n.seq > v.seq AND n.last_updated <= ?)")
		args = append(args, ceilMicro(end), toMicro(q.At.Truncate(time.Microsecond)))
	}

	page = &store.HistoryPage{}
	after := int64(-1)
	if q.Cursor != "" {
		var ok bool
		after, page.Total, ok = parseCursor(q.Cursor)
		if !ok {
			return nil, fhir.Errorf(fhir.Invalid, "history cursor %q is not valid", q.Cursor)
		}
	} else {
		count := "SELECT COUNT(*) FROM resource_versions v" + whereClause(where)
		var total int64
		if err := db.drv.QueryRow(ctx, db.rb.rebind(count), args, &total); err != nil {
			return nil, err
		}
		page.Total = int(total)
	}

	if after >= 0 {
		where, args = append(where, "v.seq < ?"), append(args, after)
	}
	// One row more than the page tells whether another page follows.
	args = append(args, q.Count+1)
	list := `SELECT v.seq, v.type, v.id, v.version_id, v.last_updated, v.deleted, v.method, v.body
FROM resource_versions v` + whereClause(where) + ` ORDER BY v.seq DESC LIMIT ?`
	rows, err := db.drv.Query(ctx, db.rb.rebind(list), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		if len(page.Versions) == q.Count {
			page.Next = formatCursor(last, page.Total)
			break
		}
		v := &store.Version{}
		var lu int64
		if err := rows.Scan(&last, &v.Type, &v.ID, &v.VersionID, &lu, &v.Deleted, &v.Method, &v.Body); err != nil {
			return nil, err
		}
		v.LastUpdated = fromMicro(lu)
		if v.Deleted {
			v.Body = nil
		}
		page.Versions = append(page.Versions, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return page, nil
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// A cursor is "h" + base-36 seq + "." + base-36 total. It is opaque to
// clients; a forged one only moves the page boundary or misstates Total.
func formatCursor(after int64, total int) string {
	return "h" + strconv.FormatInt(after, 36) + "." + strconv.FormatInt(int64(total), 36)
}

func parseCursor(s string) (after int64, total int, ok bool) {
	rest, found := strings.CutPrefix(s, "h")
	if !found {
		return 0, 0, false
	}
	a, t, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	after, err := strconv.ParseInt(a, 36, 64)
	if err != nil || after < 0 {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(t, 36, 32)
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return after, int(n), true
}
