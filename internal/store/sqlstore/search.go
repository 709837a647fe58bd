package sqlstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Search runs a search outside any unit of work (store.Store.Search).
func (db *DB) Search(ctx context.Context, q *search.Query) (res *store.SearchResult, err error) {
	res, err = db.search(ctx, db.drv, q, db.pages != nil)
	if err != nil {
		wrap(&err, "store.Search(%s)", q.Type)
	}
	return res, err
}

// Search runs a search in the unit of work (store.Tx.Search): it sees the
// unit of work's own writes.
func (tx *Tx) Search(ctx context.Context, q *search.Query) (res *store.SearchResult, err error) {
	// The page joins its bodies: the unit of work sees its own versions,
	// which may yet be rolled back, and so must not enter db.pages (a later
	// commit may give the same version number other content).
	if err := tx.flushRows(ctx); err != nil {
		return nil, err
	}
	res, err = tx.db.search(ctx, tx.tx, q, false)
	if err != nil {
		wrap(&err, "store.Tx.Search(%s)", q.Type)
	}
	return res, err
}

// maxIncluded bounds the resources _include and _revinclude add to a page.
const maxIncluded = 1000

// maxIterate bounds the rounds of :iterate.
const maxIterate = 4

// page is a match with its keyset values.
type match struct {
	rid  int64
	keys []any
	v    *store.Version
}

// search runs q on qr. cached says the page's bodies may come from
// db.pages: the page is then chosen without them, and only the bodies the
// cache does not hold are read, by a second statement. The page names each
// match's version, and a version never changes, so the cache needs no
// Generation: a commit since does not make it wrong.
func (db *DB) search(ctx context.Context, qr Querier, q *search.Query, cached bool) (*store.SearchResult, error) {
	if db.reg == nil {
		return nil, fhir.Errorf(fhir.NotSupported, "search is not configured")
	}
	if q.Count < 0 {
		return nil, errors.New("the query has no page size")
	}
	res := &store.SearchResult{Total: -1}
	keys := db.paramKeys()
	where := q.Where
	if q.Access != nil {
		// The access policy joins the query's own conditions, so that the
		// page, its links and the total count only what may be seen.
		cond, ok := q.Access.Visible(q.Type)
		if !ok {
			if q.Total != search.TotalNone {
				res.Total = 0
			}
			return res, nil
		}
		if cond != nil {
			where = append(slices.Clone(where), flatten(cond)...)
		}
	}
	// A page in rid order may walk a reference's index entries
	// (walkable), or a patient's tokens or dates (patientWalk: the
	// condition of where at byPatient), joined as d.
	sortKeys := sortColumns(q.Sort, keys, q.Type)
	walk := q.Count > 0 && len(sortKeys) == 1 && walkable(where)
	walked, byPatient := "search_reference", -1
	if walk {
		if i, table := patientWalk(db.reg, q.Type, where); i >= 0 {
			walked, byPatient = table, i
		}
	}
	// The conditions on r: with walk, on d too (the count is not walked
	// and needs them as rid IN (…)).
	conditions := func(walk bool) (string, []any, error) {
		b := &sqlBuilder{access: q.Access, walk: walk, keys: keys}
		where := where
		if walk {
			b.fence = db.d.ProbeFence
			if byPatient >= 0 {
				// The walk reads the condition itself: no probe for it.
				e := where[byPatient].(search.Exists)
				b.byPatient = &e
				where = slices.Delete(slices.Clone(where), byPatient, byPatient+1)
			}
		}
		b.setType("r", q.Type)
		b.sb.WriteString("r.type = ? AND r.deleted = ?")
		b.args = append(b.args, q.Type, false)
		if len(where) > 0 {
			b.sb.WriteString(" AND ")
			if err := b.topAnd("r", where); err != nil {
				return "", nil, err
			}
		}
		return b.sb.String(), b.args, nil
	}
	// One plan, made without the values, serves a walked page for every
	// value: it walks the index entries of the reference (or of the
	// patient's token or dates) in rid order, probes
	// the other conditions and stops at the page's end, whether the
	// patient has 38 Observations or 2,265. Any other search's best plan
	// depends on its values, and runs on a plan made for them. Measured
	// on PostgreSQL (synthea-120), a plan made for average values took 36
	// ms instead of 2 for Observation?code=85354-9 (it expects one match,
	// joins all 1,637 and sorts them, where the values' plan merges in rid
	// order and stops at 51), 108 ms instead of 11 for
	// Observation?category=laboratory&date=ge2020-01-01 and 57 instead of
	// 5 for a chain. (A search of one condition with few rows is answered
	// by a statement whose plan does not depend on the values either: see
	// collectedPage.)
	pageQr := qr
	if !walk {
		qr = perRun(qr)
	}
	whereSQL, whereArgs, err := conditions(walk)
	if err != nil {
		return nil, err
	}

	if q.Total != search.TotalNone {
		countSQL, countArgs := whereSQL, whereArgs
		if walk {
			if countSQL, countArgs, err = conditions(false); err != nil {
				return nil, err
			}
		}
		var n int64
		if err := qr.QueryRow(ctx, db.rb.rebind("SELECT COUNT(*) FROM resources r WHERE "+countSQL), countArgs, &n); err != nil {
			return nil, err
		}
		res.Total = int(n)
	}
	if q.Count == 0 {
		return res, nil
	}

	cur, err := parseSearchCursor(q.Cursor, sortKeys)
	if err != nil {
		return nil, err
	}
	backward := cur != nil && cur.prev

	var matches []match
	collected := false
	if g, ok := pageQr.(GenericPlanner); ok && !walk && len(sortKeys) == 1 {
		if e, ok := collectable(where); ok {
			if matches, collected, err = db.collectedPage(ctx, g.Generic(), q, keys, e, sortKeys, cur, backward, cached); err != nil {
				return nil, err
			}
		}
	}
	if !collected {
		if matches, err = db.page(ctx, qr, q, walk, walked, whereSQL, whereArgs, sortKeys, cur, backward, cached); err != nil {
			return nil, err
		}
	}
	more := len(matches) > q.Count
	if more {
		matches = matches[:q.Count]
	}
	if cached {
		// Its statement's plan does not depend on its values.
		if err := db.pageBodies(ctx, pageQr, matches); err != nil {
			return nil, err
		}
	}
	if backward {
		for i, j := 0, len(matches)-1; i < j; i, j = i+1, j-1 {
			matches[i], matches[j] = matches[j], matches[i]
		}
	}
	if len(matches) > 0 {
		first, last := matches[0], matches[len(matches)-1]
		switch {
		case backward:
			res.Next = formatSearchCursor(false, last, sortKeys)
			if more {
				res.Prev = formatSearchCursor(true, first, sortKeys)
			}
		default:
			if more {
				res.Next = formatSearchCursor(false, last, sortKeys)
			}
			if cur != nil {
				res.Prev = formatSearchCursor(true, first, sortKeys)
			}
		}
	}
	res.Matches = make([]*store.Version, len(matches))
	for i, m := range matches {
		res.Matches[i] = m.v
	}
	if len(q.Include) > 0 || len(q.RevInclude) > 0 {
		// The included resources' statements hold lists of rids and
		// references of any length: planned for their values.
		if res.Included, err = db.includes(ctx, perRun(qr), q, matches); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// page selects the page's matches, at most q.Count+1 (the last says there
// are more), in the order of sortKeys (reversed when backward).
func (db *DB) page(ctx context.Context, qr Querier, q *search.Query, walk bool, walked, whereSQL string, whereArgs []any,
	sortKeys []sortColumn, cur *searchCursor, backward, cached bool) ([]match, error) {
	// The page is chosen first, from resources and the indexes alone, and
	// only its rows fetch their bodies: a plan that joined the versions
	// before sorting (PostgreSQL's, for a patient with 2,265
	// Observations) read every match's body to return 51. The select
	// list: rid, the sort keys (k0…, the last is the rid again), then the
	// version. With the bodies in memory (cached), the page is that first
	// query alone: wrapped in the join, SQLite sorted its rows a second
	// time, in a temporary B-tree, for the outer ORDER BY.
	sel := &sqlBuilder{}
	if !cached {
		sel.sb.WriteString("SELECT p.rid")
		for i := range sortKeys {
			fmt.Fprintf(&sel.sb, ", p.k%d", i)
		}
		sel.sb.WriteString(", p.id, p.version_id, p.last_updated, v.method, v.body FROM (")
	}
	sel.sb.WriteString("SELECT r.rid")
	for i, k := range sortKeys {
		sel.sb.WriteString(", ")
		if walk {
			// The order of the walked index entries, which the database
			// then need not sort.
			sel.sb.WriteString("d.rid")
		} else {
			k.render(sel)
		}
		fmt.Fprintf(&sel.sb, " AS k%d", i)
	}
	sel.sb.WriteString(", r.id, r.version_id, r.last_updated FROM ")
	if walk {
		sel.sb.WriteString(walked + " d JOIN ")
	}
	sel.sb.WriteString("resources r ")
	if walk {
		sel.sb.WriteString("ON r.rid = d.rid ")
	}
	sel.sb.WriteString("WHERE ")
	sel.sb.WriteString(whereSQL)
	sel.args = append(sel.args, whereArgs...)
	if cur != nil {
		sel.sb.WriteString(" AND (")
		keyset(sel, sortKeys, cur, backward)
		sel.sb.WriteString(")")
	}
	if walk {
		// A resource may have several entries for the reference. SQLite
		// groups in the walked order by d.rid alone; PostgreSQL also needs
		// r's key to select r's columns.
		sel.sb.WriteString(" GROUP BY d.rid")
		if db.d.GroupByKey {
			sel.sb.WriteString(", r.rid")
		}
	}
	order := func(prefix string) {
		sel.sb.WriteString(" ORDER BY ")
		for i, k := range sortKeys {
			if i > 0 {
				sel.sb.WriteString(", ")
			}
			fmt.Fprintf(&sel.sb, "%sk%d", prefix, i)
			if k.desc != backward {
				sel.sb.WriteString(" DESC")
			}
		}
	}
	order("")
	sel.sb.WriteString(" LIMIT ?")
	sel.args = append(sel.args, q.Count+1)
	if !cached {
		sel.sb.WriteString(") p JOIN resource_versions v ON v.rid = p.rid AND v.version_id = p.version_id")
		order("p.")
	}

	rows, err := qr.Query(ctx, db.rb.rebind(sel.sb.String()), sel.args...)
	if err != nil {
		return nil, err
	}
	return scanMatches(rows, q.Type, q.Count+1, sortKeys, cached, nil)
}

// scanMatches reads the rows of a page: rid, the sort keys (the last is
// the rid again), id, version_id, last_updated, then, unless cached,
// method and body, then extra.
func scanMatches(rows Rows, typ string, limit int, sortKeys []sortColumn, cached bool, extra *int64) ([]match, error) {
	// A page is read at every search, of at most limit rows (its query's
	// LIMIT): its versions are allocated in blocks, growing, rather than
	// one by one, and one slice of scan destinations serves every row.
	var matches []match
	var versions []store.Version
	dest := make([]any, 0, len(sortKeys)+7)
	for rows.Next() {
		if len(versions) == cap(versions) {
			// A new block: the matches keep pointing into the full one.
			versions = make([]store.Version, 0, max(min(2*cap(versions), limit-len(matches)), 4))
		}
		versions = append(versions, store.Version{Type: typ})
		matches = append(matches, match{v: &versions[len(versions)-1]})
		m := &matches[len(matches)-1]
		dest = append(dest[:0], &m.rid)
		m.keys = make([]any, len(sortKeys)-1)
		for i, k := range sortKeys[:len(sortKeys)-1] {
			switch k.kind {
			case kindInt:
				m.keys[i] = new(int64)
			case kindFloat:
				m.keys[i] = new(float64)
			default:
				m.keys[i] = new(string)
			}
			dest = append(dest, m.keys[i])
		}
		var ridAgain int64
		dest = append(dest, &ridAgain)
		var lu int64
		dest = append(dest, &m.v.ID, &m.v.VersionID, &lu)
		if !cached {
			dest = append(dest, &m.v.Method, &m.v.Body)
		}
		if extra != nil {
			dest = append(dest, extra)
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
		m.v.LastUpdated = fromMicro(lu)
	}
	rows.Close()
	return matches, rows.Err()
}

// pageBodies gives the matches of a page chosen without bodies their
// method and body: from db.pages where it holds the very version, the
// others from resource_versions in one statement, which are then cached.
func (db *DB) pageBodies(ctx context.Context, qr Querier, matches []match) error {
	var gen Generation // db.pages has no other
	if len(matches) > 0 {
		db.pages.getEach(gen, matches[0].v.Type, len(matches), func(i int) string { return matches[i].v.ID },
			func(i int, v *store.Version) bool {
				m := matches[i].v
				if v.VersionID != m.VersionID || v.Deleted {
					return false
				}
				m.Method, m.Body = v.Method, v.Body
				return true
			})
	}
	missing := make(map[int64]*store.Version, len(matches))
	var sb strings.Builder
	var args []any
	for _, m := range matches {
		if m.v.Body != nil {
			continue // from the cache
		}
		if len(args) > 0 {
			sb.WriteString(", ")
		}
		// Typed: PostgreSQL reads an untyped parameter in VALUES as text.
		sb.WriteString("(CAST(? AS BIGINT), CAST(? AS BIGINT))")
		args = append(args, m.rid, m.v.VersionID)
		missing[m.rid] = m.v
	}
	if len(missing) == 0 {
		return nil
	}
	// A VALUES list joined to the versions' (rid, version_id) key, one
	// lookup each; written as (rid, version_id) IN (VALUES …), SQLite
	// scans the whole table.
	rows, err := qr.Query(ctx, db.rb.rebind("SELECT v.rid, v.version_id, v.method, v.body FROM (VALUES "+sb.String()+
		") k JOIN resource_versions v ON v.rid = k.column1 AND v.version_id = k.column2"), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var rid, vid int64
		var method string
		var body []byte
		if err := rows.Scan(&rid, &vid, &method, &body); err != nil {
			rows.Close()
			return err
		}
		if v := missing[rid]; v != nil && v.VersionID == vid {
			v.Method, v.Body = method, body
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, v := range missing {
		if v.Body == nil {
			// The page named a current version; versions are never removed
			// while their resource exists.
			return fmt.Errorf("version %d of %s/%s has no body", v.VersionID, v.Type, v.ID)
		}
		db.pages.put(gen, v)
	}
	return nil
}

// ---- rendering of the expression tree ----

// sqlBuilder accumulates SQL text with "?" placeholders and its arguments.
// Only constant text from this file and the closed sets of tables and
// columns is written into the SQL; every value is an argument.
type sqlBuilder struct {
	sb    strings.Builder
	args  []any
	alias int
	// types holds the resource type of each resource alias, which index
	// lookups filter on.
	types map[string]string
	// access is the query's access policy: chained and _has conditions
	// look only at resources it makes visible.
	access search.Visibility
	// walk renders the top level's driver, a walkable reference (see
	// walkable), as conditions on the joined index alias d rather than
	// as rid IN (…).
	walk bool
	// byPatient, with walk, is the condition that the walk reads with
	// the patient from an index table by patient (patientWalk).
	byPatient *search.Exists
	// keys are the parameters' keys, which index lookups filter on.
	keys paramKeys
	// fence ends the subquery of a probe (Dialect.ProbeFence).
	fence string
}

// pid is the key of parameter code of the resource alias res's type.
func (b *sqlBuilder) pid(res, code string) int64 {
	return b.keys.key(b.types[res], code)
}

// flatten makes an And's conditions the top level's, so that the planner
// of topAnd may pick one of them to drive the query.
func flatten(e search.Expr) search.And {
	if and, ok := e.(search.And); ok {
		return and
	}
	return search.And{e}
}

// visible renders " AND " and the access policy's condition on the
// resource alias res of type typ, if there is a policy.
func (b *sqlBuilder) visible(res, typ string) error {
	if b.access == nil {
		return nil
	}
	cond, ok := b.access.Visible(typ)
	switch {
	case !ok:
		b.sb.WriteString(" AND 1 = 0")
	case cond != nil:
		b.sb.WriteString(" AND ")
		return b.expr(res, cond)
	}
	return nil
}

func (b *sqlBuilder) setType(alias, typ string) {
	if b.types == nil {
		b.types = map[string]string{}
	}
	b.types[alias] = typ
}

func (b *sqlBuilder) newAlias(prefix string) string {
	b.alias++
	return prefix + strconv.Itoa(b.alias)
}

var tableNames = map[search.Table]string{
	search.TokenTable:     "search_token",
	search.StringTable:    "search_string",
	search.DateTable:      "search_date",
	search.ReferenceTable: "search_reference",
	search.QuantityTable:  "search_quantity",
	search.NumberTable:    "search_number",
	search.URITable:       "search_uri",
}

// columns maps each column to its SQL name and the tables that have it.
var columns = map[search.Column]struct {
	name   string
	tables []search.Table
}{
	search.ColID:          {"id", []search.Table{search.Resources}},
	search.ColLastUpdated: {"last_updated", []search.Table{search.Resources}},
	search.ColSystem:      {"system", []search.Table{search.TokenTable, search.QuantityTable}},
	search.ColCode:        {"code", []search.Table{search.TokenTable, search.QuantityTable}},
	search.ColNorm:        {"norm", []search.Table{search.StringTable}},
	search.ColExact:       {"exact", []search.Table{search.StringTable}},
	search.ColLow:         {"low", []search.Table{search.DateTable}},
	search.ColHigh:        {"high", []search.Table{search.DateTable}},
	search.ColTargetType:  {"target_type", []search.Table{search.ReferenceTable}},
	search.ColTargetID:    {"target_id", []search.Table{search.ReferenceTable}},
	search.ColURL:         {"url", []search.Table{search.ReferenceTable}},
	search.ColValue:       {"value", []search.Table{search.NumberTable, search.QuantityTable, search.URITable}},
}

// expr renders e for the resource row alias res (which has rid, id and
// last_updated columns).
func (b *sqlBuilder) expr(res string, e search.Expr) error {
	return b.exprIn(res, search.Resources, res, e)
}

// exprIn renders e where row (of table t) is the row in scope for Cmp, and
// res the resource for index lookups.
func (b *sqlBuilder) exprIn(res string, t search.Table, row string, e search.Expr) error {
	switch e := e.(type) {
	case search.And:
		if len(e) == 0 {
			b.sb.WriteString("1 = 1")
			return nil
		}
		return b.join(" AND ", len(e), func(i int) error { return b.exprIn(res, t, row, e[i]) })
	case search.Or:
		if len(e) == 0 {
			b.sb.WriteString("1 = 0")
			return nil
		}
		return b.join(" OR ", len(e), func(i int) error { return b.exprIn(res, t, row, e[i]) })
	case search.Not:
		b.sb.WriteString("NOT (")
		if err := b.exprIn(res, t, row, e.X); err != nil {
			return err
		}
		b.sb.WriteString(")")
		return nil
	case search.Cmp:
		return b.cmp(t, row, e)
	case search.Exists:
		if t != search.Resources {
			return errors.New("an index lookup inside an index row condition")
		}
		return b.exists(res, e, false)
	case search.Composite:
		return b.composite(res, e)
	case search.Chain:
		x, tg := b.newAlias("x"), b.newAlias("t")
		fmt.Fprintf(&b.sb, "%s.rid IN (SELECT %s.rid FROM search_reference %s JOIN resources %s ON %s.type = %s.target_type AND %s.id = %s.target_id WHERE %s.pid = ? AND %s.target_type = ? AND %s.deleted = ? AND ",
			res, x, x, tg, tg, x, tg, x, x, x, tg)
		b.args = append(b.args, b.pid(res, e.Param), e.TargetType, false)
		b.setType(tg, e.TargetType)
		if err := b.expr(tg, e.Where); err != nil {
			return err
		}
		if err := b.visible(tg, e.TargetType); err != nil {
			return err
		}
		b.sb.WriteString(")")
		return nil
	case search.Has:
		x, s, tg := b.newAlias("x"), b.newAlias("s"), b.newAlias("t")
		fmt.Fprintf(&b.sb, "%s.rid IN (SELECT %s.rid FROM search_reference %s JOIN resources %s ON %s.rid = %s.rid JOIN resources %s ON %s.type = %s.target_type AND %s.id = %s.target_id WHERE %s.pid = ? AND ",
			res, tg, x, s, s, x, tg, tg, x, tg, x, x)
		b.args = append(b.args, b.keys.key(e.Type, e.Param))
		b.setType(s, e.Type)
		if err := b.expr(s, e.Where); err != nil {
			return err
		}
		if err := b.visible(s, e.Type); err != nil {
			return err
		}
		b.sb.WriteString(")")
		return nil
	case search.Compartment:
		fmt.Fprintf(&b.sb, "%s.rid IN (SELECT rid FROM search_compartment WHERE patient_id = ?)", res)
		b.args = append(b.args, e.Patient)
		return nil
	case nil:
		return errors.New("nil expression")
	}
	return fmt.Errorf("unknown expression %T", e)
}

func (b *sqlBuilder) join(sep string, n int, f func(i int) error) error {
	b.sb.WriteString("(")
	for i := range n {
		if i > 0 {
			b.sb.WriteString(sep)
		}
		if err := f(i); err != nil {
			return err
		}
	}
	b.sb.WriteString(")")
	return nil
}

// topAnd renders the conditions of a query. One of them drives the query:
// rendered as rid IN (subquery), the database starts from its index
// (type, param, value) and fetches resources by rid. Every other index
// condition is rendered as a correlated EXISTS, a probe by rid of the few
// index rows of each candidate. Were they all IN subqueries, the database
// would build every list in full, and "category=laboratory" lists most of
// the Observations of the server to keep the few of one patient.
func (b *sqlBuilder) topAnd(res string, and search.And) error {
	drive := driver(and)
	return b.join(" AND ", len(and), func(i int) error {
		switch e := and[i].(type) {
		case search.Exists:
			if i != drive {
				return b.exists(res, e, true)
			}
			if c := b.byPatient; b.walk && c != nil {
				// The patient's id is the reference's target id
				// (patientWalk).
				b.sb.WriteString("d.pid = ? AND d.patient = ? AND ")
				b.args = append(b.args, b.pid(res, c.Param), walkedPatient(e))
				return b.exprIn(res, c.Table, "d", c.Where)
			}
			if b.walk {
				b.sb.WriteString("d.pid = ? AND ")
				b.args = append(b.args, b.pid(res, e.Param))
				return b.exprIn(res, e.Table, "d", e.Where)
			}
		case search.Compartment:
			if i != drive {
				// A probe of the candidate's own compartment row, by the
				// (patient_id, rid) index.
				fmt.Fprintf(&b.sb, "EXISTS (SELECT 1 FROM search_compartment WHERE patient_id = ? AND rid = %s.rid%s)", res, b.fence)
				b.args = append(b.args, e.Patient)
				return nil
			}
		}
		return b.expr(res, and[i])
	})
}

// driver is the index of the condition of and that drives the query (the
// lowest driveRank), -1 when none can.
func driver(and search.And) int {
	drive, best := -1, cannotDrive
	for i, e := range and {
		if r := driveRank(e); r < best {
			drive, best = i, r
		}
	}
	return drive
}

// walkable reports whether the driver of and is a reference to one
// resource, type and id. Its index entries, (type, param, target_id,
// target_type, rid), are then in rid order, so a page in rid order can
// walk them as a join and stop at the page's end, where rid IN (…) first
// collects every match: for a patient with 2,265 Observations
// PostgreSQL took 8 ms instead of 0.6.
func walkable(and search.And) bool {
	drive := driver(and)
	if drive < 0 {
		return false
	}
	e, ok := and[drive].(search.Exists)
	if !ok || e.Table != search.ReferenceTable {
		return false
	}
	w, ok := e.Where.(search.And)
	if !ok || len(w) != 2 {
		return false
	}
	var typ, id bool
	for _, x := range w {
		c, ok := x.(search.Cmp)
		if !ok || c.Op != search.Eq {
			return false
		}
		typ = typ || c.Col == search.ColTargetType
		id = id || c.Col == search.ColTargetID
	}
	return typ && id
}

// maxCollected bounds the index rows a collected page reads (see
// collectedPage).
const maxCollected = 1000

// collectable returns the condition of a search that collectedPage may
// answer: its only one, a condition on one parameter's index rows.
func collectable(and search.And) (search.Exists, bool) {
	if len(and) != 1 {
		return search.Exists{}, false
	}
	e, ok := and[0].(search.Exists)
	return e, ok
}

// collectedPage selects a page in rid order from the index rows of its one
// condition e when they are few: it reads at most maxCollected+1 of them,
// and when it read more than maxCollected it reports collected false and
// the page must be chosen as any other. A search planned for its values
// pays for the planning at every run, and for Patient?name=… on
// PostgreSQL planning was nine tenths of the work (0.28 ms to plan, 0.04
// to run). This statement's plan does not depend on its values: it reads
// the rows, sorts their rids and joins the first count+1 to resources, so
// it runs on a generic plan (qr is GenericPlanner.Generic) whatever
// they are. A plan made once for the original statement is right for a
// rare value and wrong for a common one (synthea-120:
// Observation?category:text=lab took 60 ms on it, 0.3 on its own plan);
// here a common value costs the reading of maxCollected rows (0.24 ms)
// before the search is planned for it.
//
// Index rows are those of current resources of the parameter's type
// (Tx.Put deletes a deleted resource's rows), so the first count+1 rids
// are the page. An empty page after a cursor says nothing when the rows
// were too many (they may all be before the cursor): it is not collected
// either.
//
// A condition found with too many rows is remembered (DB.many), and its
// next searches go to the per-run plans at once: they would read the
// same rows again (−15 % for Observation?code= of the eight codes with
// more than 1,000 Observations on synthea-120). Rows are rarely deleted,
// and a condition remembered wrongly only costs the planning.
func (db *DB) collectedPage(ctx context.Context, qr Querier, q *search.Query, keys paramKeys, e search.Exists,
	sortKeys []sortColumn, cur *searchCursor, backward, cached bool) (_ []match, collected bool, err error) {
	typ := q.Type
	b := &sqlBuilder{access: q.Access, keys: keys}
	b.setType("r", typ)
	b.sb.WriteString("WITH m AS MATERIALIZED (")
	if err := b.rows("r", e, false); err != nil {
		return nil, false, err
	}
	cond := manyKey(b.sb.String(), b.args)
	if db.many.has(cond) {
		return nil, false, nil
	}
	b.sb.WriteString(" LIMIT ?) SELECT p.rid, p.rid, r.id, r.version_id, r.last_updated")
	b.args = append(b.args, maxCollected+1)
	if !cached {
		b.sb.WriteString(", v.method, v.body")
	}
	b.sb.WriteString(", (SELECT COUNT(*) FROM m) FROM (SELECT DISTINCT r.rid FROM m r")
	if cur != nil {
		b.sb.WriteString(" WHERE ")
		keyset(b, sortKeys, cur, backward)
	}
	desc := ""
	if backward {
		desc = " DESC"
	}
	b.sb.WriteString(" ORDER BY r.rid" + desc + " LIMIT ?) p JOIN resources r ON r.rid = p.rid")
	b.args = append(b.args, q.Count+1)
	if !cached {
		b.sb.WriteString(" JOIN resource_versions v ON v.rid = r.rid AND v.version_id = r.version_id")
	}
	b.sb.WriteString(" WHERE r.type = ? AND r.deleted = ? ORDER BY p.rid" + desc)
	b.args = append(b.args, typ, false)
	rows, err := qr.Query(ctx, db.rb.rebind(b.sb.String()), b.args...)
	if err != nil {
		return nil, false, err
	}
	var n int64
	matches, err := scanMatches(rows, typ, q.Count+1, sortKeys, cached, &n)
	if n > maxCollected {
		db.many.add(cond)
	}
	if err != nil || n > maxCollected || (len(matches) == 0 && cur != nil) {
		return nil, false, err
	}
	return matches, true, nil
}

// maxMany bounds the conditions manyRows remembers; it forgets them all
// when full. It does not remember a condition longer than maxManyKey
// (values are the client's: the set stays under 4 MB).
const (
	maxMany    = 4096
	maxManyKey = 1024
)

// manyRows is a set of conditions, each its SQL and arguments (manyKey).
type manyRows struct {
	mu  sync.Mutex
	set map[string]struct{}
}

func manyKey(sql string, args []any) string {
	var b strings.Builder
	b.WriteString(sql)
	for _, a := range args {
		fmt.Fprintf(&b, "\x00%v", a)
	}
	return b.String()
}

func (m *manyRows) has(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.set[key]
	return ok
}

func (m *manyRows) add(key string) {
	if len(key) > maxManyKey {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil || len(m.set) >= maxMany {
		m.set = make(map[string]struct{})
	}
	m.set[key] = struct{}{}
}

// patientWalk returns the index in and of a condition that a walk may read
// from an index table by patient, and that table; -1 when there is none.
// The driver must be walkable and be the `patient` parameter naming a
// Patient, and the condition a token's one code (with or without its
// system) or a date's comparison, of a parameter the table holds
// (byPatientRow: one of typ's parameters that US Core searches with
// `patient`). The walk then reads the patient's rows of the table for
// that parameter, in rid order, where it would walk all of the patient's
// resources of the type and probe each for the condition.
func patientWalk(reg *search.Registry, typ string, and search.And) (int, string) {
	if !walkable(and) {
		return -1, ""
	}
	drive := driver(and)
	if e := and[drive].(search.Exists); e.Param != search.PatientParam || walkedPatient(e) == "" {
		return -1, ""
	}
	for _, t := range byPatientTables {
		for i, x := range and {
			if e, ok := x.(search.Exists); ok && i != drive && e.Table == t.of &&
				byPatientRow(reg, typ, e.Param) && t.walks(e.Where) {
				return i, t.name
			}
		}
	}
	return -1, ""
}

// walkedPatient is the id of the Patient a walkable reference condition
// names, "" when it names a resource of another type.
func walkedPatient(e search.Exists) string {
	var typ, id string
	for _, x := range e.Where.(search.And) {
		c := x.(search.Cmp)
		switch c.Col {
		case search.ColTargetType:
			typ, _ = c.Value.(string)
		case search.ColTargetID:
			id, _ = c.Value.(string)
		}
	}
	if typ != "Patient" {
		return ""
	}
	return id
}

// oneCode reports whether a token condition is code or system|code: one
// value, compared for equality.
func oneCode(w search.Expr) bool {
	eq := func(x search.Expr, col search.Column) bool {
		c, ok := x.(search.Cmp)
		return ok && c.Col == col && c.Op == search.Eq
	}
	switch w := w.(type) {
	case search.Cmp:
		return eq(w, search.ColCode)
	case search.And:
		return len(w) == 2 && (eq(w[0], search.ColSystem) && eq(w[1], search.ColCode) ||
			eq(w[0], search.ColCode) && eq(w[1], search.ColSystem))
	}
	return false
}

// driveRanks orders the tables by how few rows one value is likely to
// match: a reference names one resource; a token code is
// often specific but can be broad (status=final); dates, numbers and
// quantities are ranges.
var driveRanks = map[search.Table]int{
	search.ReferenceTable: 1,
	search.TokenTable:     3,
	search.StringTable:    4,
	search.URITable:       4,
	search.DateTable:      5,
	search.QuantityTable:  5,
	search.NumberTable:    5,
}

// compartmentRank places a patient compartment (the access policy of a
// patient token) after a reference: the compartment lists every resource
// of the patient, of every type, where patient=… names the resources of
// one type; but before a token, which can match most of a type.
const compartmentRank = 2

// driveRank ranks a condition as the driver of a query, lower is better;
// cannotDrive for one that cannot drive (a negation, :missing, an OR
// of several kinds).
func driveRank(e search.Expr) int {
	switch e := e.(type) {
	case search.Compartment:
		return compartmentRank
	case search.Exists:
		if r, ok := driveRanks[e.Table]; ok && e.Where != nil {
			return r
		}
	}
	return cannotDrive
}

// cannotDrive ranks a condition that never drives a query.
const cannotDrive = 100

// exists renders an index lookup. As rid IN (subquery) the database can
// start from the index (type, param, value) and fetch resources by rid; as
// a probe (correlated EXISTS) it looks up a candidate's own index rows by
// rid. topAnd picks which.
func (b *sqlBuilder) exists(res string, e search.Exists, probe bool) error {
	if !probe {
		fmt.Fprintf(&b.sb, "%s.rid IN (", res)
		if err := b.rows(res, e, false); err != nil {
			return err
		}
		b.sb.WriteString(")")
		return nil
	}
	// The table's key, (rid, pid, value…), answers it.
	b.sb.WriteString("EXISTS (")
	if err := b.rows(res, e, true); err != nil {
		return err
	}
	b.sb.WriteString(b.fence)
	b.sb.WriteString(")")
	return nil
}

// rows renders the rids of the index rows that satisfy e, for resources
// of the alias res's type: SELECT i.rid FROM … WHERE i.pid = ? AND …;
// correlated, those of the resource res only.
func (b *sqlBuilder) rows(res string, e search.Exists, correlated bool) error {
	name, ok := tableNames[e.Table]
	if !ok {
		return fmt.Errorf("unknown table %d", e.Table)
	}
	a := b.newAlias("i")
	fmt.Fprintf(&b.sb, "SELECT %s.rid FROM %s %s WHERE ", a, name, a)
	if correlated {
		fmt.Fprintf(&b.sb, "%s.rid = %s.rid AND ", a, res)
	}
	fmt.Fprintf(&b.sb, "%s.pid = ?", a)
	b.args = append(b.args, b.pid(res, e.Param))
	if e.Where != nil {
		b.sb.WriteString(" AND ")
		return b.exprIn(res, e.Table, a, e.Where)
	}
	return nil
}

func (b *sqlBuilder) composite(res string, e search.Composite) error {
	if len(e.Parts) == 0 {
		return errors.New("a composite without parts")
	}
	aliases := make([]string, len(e.Parts))
	for i, p := range e.Parts {
		if _, ok := tableNames[p.Table]; !ok {
			return fmt.Errorf("unknown table %d", p.Table)
		}
		aliases[i] = b.newAlias("c")
	}
	fmt.Fprintf(&b.sb, "%s.rid IN (SELECT %s.rid FROM %s %s", res, aliases[0], tableNames[e.Parts[0].Table], aliases[0])
	for i := 1; i < len(e.Parts); i++ {
		fmt.Fprintf(&b.sb, " JOIN %s %s ON %s.rid = %s.rid AND %s.grp = %s.grp", tableNames[e.Parts[i].Table], aliases[i], aliases[i], aliases[0], aliases[i], aliases[0])
	}
	b.sb.WriteString(" WHERE ")
	for i, p := range e.Parts {
		if i > 0 {
			b.sb.WriteString(" AND ")
		}
		fmt.Fprintf(&b.sb, "%s.pid = ?", aliases[i])
		b.args = append(b.args, b.pid(res, p.Param))
		if p.Where != nil {
			b.sb.WriteString(" AND ")
			if err := b.exprIn(res, p.Table, aliases[i], p.Where); err != nil {
				return err
			}
		}
	}
	b.sb.WriteString(")")
	return nil
}

// maxPrefix sorts after any text that starts with a prefix: U+10FFFF is the
// greatest code point, and its UTF-8 bytes the greatest a valid string has.
const maxPrefix = "\U0010FFFF"

func (b *sqlBuilder) cmp(t search.Table, row string, c search.Cmp) error {
	col, ok := columns[c.Col]
	if !ok || !hasTable(col.tables, t) {
		return fmt.Errorf("column %d is not a column of table %d", c.Col, t)
	}
	name := row + "." + col.name
	ops := map[search.Op]string{search.Eq: "=", search.Ne: "<>", search.Lt: "<", search.Le: "<=", search.Gt: ">", search.Ge: ">="}
	switch c.Op {
	case search.Prefix:
		s, ok := c.Value.(string)
		if !ok {
			return errors.New("prefix on a non-string")
		}
		fmt.Fprintf(&b.sb, "(%s >= ? AND %s < ?)", name, name)
		b.args = append(b.args, s, s+maxPrefix)
	case search.Contains:
		s, ok := c.Value.(string)
		if !ok {
			return errors.New("contains on a non-string")
		}
		fmt.Fprintf(&b.sb, `%s LIKE ? ESCAPE '\'`, name)
		b.args = append(b.args, "%"+likeEscaper.Replace(s)+"%")
	case search.In:
		list, ok := c.Value.([]string)
		if !ok || len(list) == 0 {
			return errors.New("in without a list")
		}
		fmt.Fprintf(&b.sb, "%s IN (?%s)", name, strings.Repeat(", ?", len(list)-1))
		for _, s := range list {
			b.args = append(b.args, s)
		}
	default:
		op, ok := ops[c.Op]
		if !ok {
			return fmt.Errorf("unknown operator %d", c.Op)
		}
		fmt.Fprintf(&b.sb, "%s %s ?", name, op)
		b.args = append(b.args, c.Value)
	}
	return nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func hasTable(ts []search.Table, t search.Table) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// ---- sorting and keyset cursors ----

type keyKind uint8

const (
	kindInt keyKind = iota
	kindFloat
	kindText
)

// sortColumn is one ORDER BY key: a resource column or the least (greatest,
// descending) value of a parameter, with missing values as a sentinel that
// sorts last ascending.
type sortColumn struct {
	sql  string // the expression, with one "?" for each key of pids
	pids []any  // the keys of the parameters whose rows hold the values
	null any    // the sentinel (COALESCE)
	kind keyKind
	desc bool
}

func (k sortColumn) render(b *sqlBuilder) {
	if k.pids == nil {
		b.sb.WriteString(k.sql)
		return
	}
	b.sb.WriteString("COALESCE(")
	b.sb.WriteString(k.sql)
	b.sb.WriteString(", ?)")
	b.args = append(append(b.args, k.pids...), k.null)
}

// sortColumns are the ORDER BY keys of a query on typ: its _sort keys,
// then rid, which makes the order total and so the keyset exact.
func sortColumns(sort []search.SortKey, keys paramKeys, typ string) []sortColumn {
	var out []sortColumn
	for _, k := range sort {
		c := sortColumn{desc: k.Desc}
		switch k.Param {
		case "_id":
			c.sql, c.kind = "r.id", kindText
		case "_lastUpdated":
			c.sql, c.kind = "r.last_updated", kindInt
		default:
			agg := "MIN"
			if k.Desc {
				agg = "MAX"
			}
			var col string
			switch k.Table {
			case search.TokenTable:
				col, c.kind = "code", kindText
			case search.StringTable:
				col, c.kind = "norm", kindText
			case search.DateTable:
				col, c.kind = "low", kindInt
				if k.Desc {
					col = "high"
				}
			case search.ReferenceTable:
				col, c.kind = "target_id", kindText
			case search.QuantityTable, search.NumberTable:
				col, c.kind = "value", kindFloat
			case search.URITable:
				col, c.kind = "value", kindText
			default:
				continue
			}
			rows := k.Rows
			if rows == nil {
				rows = []string{k.Param}
			}
			for _, p := range rows {
				c.pids = append(c.pids, keys.key(typ, p))
			}
			in := "= ?"
			if len(rows) > 1 {
				in = "IN (?" + strings.Repeat(", ?", len(rows)-1) + ")"
			}
			c.sql = "(SELECT " + agg + "(s." + col + ") FROM " + tableNames[k.Table] + " s WHERE s.rid = r.rid AND s.pid " + in + ")"
			switch c.kind {
			case kindInt:
				c.null = int64(math.MaxInt64)
			case kindFloat:
				c.null = math.MaxFloat64
			default:
				c.null = maxPrefix
			}
		}
		out = append(out, c)
	}
	return append(out, sortColumn{sql: "r.rid", kind: kindInt})
}

// searchCursor is the position after (or, for prev, before) a row: its
// sort key values and rid.
type searchCursor struct {
	prev bool
	vals []any
}

// keyset renders "the row comes after the cursor" in the query's order
// (before it when backward): k1 > c1 OR (k1 = c1 AND k2 > c2) OR ….
func keyset(b *sqlBuilder, keys []sortColumn, cur *searchCursor, backward bool) {
	for i := range keys {
		if i > 0 {
			b.sb.WriteString(" OR ")
		}
		b.sb.WriteString("(")
		for j := 0; j < i; j++ {
			keys[j].render(b)
			b.sb.WriteString(" = ? AND ")
			b.args = append(b.args, cur.vals[j])
		}
		keys[i].render(b)
		if keys[i].desc != backward {
			b.sb.WriteString(" < ?")
		} else {
			b.sb.WriteString(" > ?")
		}
		b.args = append(b.args, cur.vals[i])
		b.sb.WriteString(")")
	}
}

// A search cursor is "s" + base64url of a JSON array of strings: "n" or
// "p", then each key value. It is opaque to clients; a forged one only
// moves the page boundary.
func formatSearchCursor(prev bool, m match, keys []sortColumn) string {
	dir := "n"
	if prev {
		dir = "p"
	}
	parts := []string{dir}
	for i, k := range keys {
		var v any
		if i == len(keys)-1 {
			v = &m.rid
		} else {
			v = m.keys[i]
		}
		switch k.kind {
		case kindInt:
			parts = append(parts, strconv.FormatInt(*v.(*int64), 10))
		case kindFloat:
			parts = append(parts, strconv.FormatFloat(*v.(*float64), 'g', -1, 64))
		default:
			parts = append(parts, *v.(*string))
		}
	}
	js, _ := json.Marshal(parts)
	return "s" + base64.RawURLEncoding.EncodeToString(js)
}

func parseSearchCursor(s string, keys []sortColumn) (*searchCursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := fhir.Errorf(fhir.Invalid, "the paging cursor is not valid for this search")
	raw, ok := strings.CutPrefix(s, "s")
	if !ok {
		return nil, bad
	}
	js, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, bad
	}
	var parts []string
	if err := json.Unmarshal(js, &parts); err != nil || len(parts) != len(keys)+1 || (parts[0] != "n" && parts[0] != "p") {
		return nil, bad
	}
	c := &searchCursor{prev: parts[0] == "p"}
	for i, k := range keys {
		p := parts[i+1]
		switch k.kind {
		case kindInt:
			n, err := strconv.ParseInt(p, 10, 64)
			if err != nil {
				return nil, bad
			}
			c.vals = append(c.vals, n)
		case kindFloat:
			f, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return nil, bad
			}
			c.vals = append(c.vals, f)
		default:
			c.vals = append(c.vals, p)
		}
	}
	return c, nil
}
