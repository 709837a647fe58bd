package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Index rows are written by Tx.Put in the resource's own unit of work, so
// that every writer (REST, bundles, import) keeps the indexes current
// without knowing about them.

// insertBatch is how many rows one INSERT writes at most: few statement
// texts to prepare, few round trips per resource. An INSERT writes a power
// of two rows (indexRows.statements), so that a table has six texts, not
// thirty-two: synthea-120's import made 415 distinct texts where pgx
// keeps 512 prepared per connection, 57 since.
const insertBatch = 32

// compartmentBatch is how many compartment rows one INSERT writes at most,
// far below the databases' limits on parameters per statement.
const compartmentBatch = 512

// indexStatements appends to stmts the statements that replace the index
// rows of resource rid with those of v (none for a deletion). fresh says
// the resource has no rows yet. The rows of the resources a unit of work
// creates after its first are held by the unit instead (Tx.pending) and
// written, all together and in the order of each table's value index,
// before it searches or ends (flushRows).
func (tx *Tx) indexStatements(ctx context.Context, stmts []Statement, rid int64, v *store.Version, fresh bool) ([]Statement, error) {
	reg := tx.db.reg
	if reg == nil {
		return stmts, nil
	}
	if !fresh {
		// Rows held for this resource (created in this unit of work)
		// must be written before they are deleted.
		if err := tx.flushRows(ctx); err != nil {
			return nil, err
		}
		for _, t := range rowTables {
			stmts = append(stmts, Statement{Query: "DELETE FROM " + t.name + " WHERE rid = ?", Args: []any{rid}})
		}
	}
	if v.Deleted {
		return stmts, nil
	}
	ix := v.Index
	if ix == nil {
		var err error
		if ix, err = reg.Index(v.Type, v.Body); err != nil {
			return nil, err
		}
	}
	// A unit of work that creates one resource gains nothing from holding
	// its rows: the first is written at once.
	if fresh {
		tx.created++
	}
	hold := fresh && tx.created > 1
	rows := tx.pending
	if !hold || rows == nil {
		rows = new(indexRows)
	}
	if hold {
		tx.pending = rows
	}
	if err := rows.add(rid, tx.db.paramKeys()[v.Type], reg, v.Type, ix); err != nil {
		return nil, err
	}
	if !hold {
		return tx.db.rowStatements(stmts, rows), nil
	}
	if rows.n >= maxPendingRows {
		return stmts, tx.flushRows(ctx)
	}
	return stmts, nil
}

// maxPendingRows bounds the index rows a unit of work holds (about 100
// bytes each).
const maxPendingRows = 100_000

// flushRows writes the resources and the index rows the unit of work
// holds (holdCreate, indexStatements), the resources first.
func (tx *Tx) flushRows(ctx context.Context) error {
	if tx.pending == nil && len(tx.creates) == 0 {
		return nil
	}
	var stmts []Statement
	held := tx.creates
	if len(held) > 0 {
		stmts = append(stmts, tx.createStatement())
		tx.creates = nil
	}
	if tx.pending != nil {
		stmts = tx.db.rowStatements(stmts, tx.pending)
		tx.pending = nil
	}
	err := tx.ExecBatch(ctx, stmts)
	if errors.Is(err, errHeldConflict) {
		return tx.heldConflict(ctx, held)
	}
	return err
}

// rowTables are the tables of index rows: the seven of search.Index's
// rows, in its order, the tables by patient, in byPatientTables' order, and
// the compartment table. cols are a table's columns and the row fields
// that hold them. indexRows.statements writes a table's rows in the order
// of its value index (index; order is the fields of its columns). Rows
// inserted in the order of an index land on the pages the previous one
// touched: a fresh import of synthea-120 took three quarters of the time
// and of the CPU on SQLite, and two thirds of the time on PostgreSQL
// (which also makes one round trip of a Bundle's rows), when each Bundle's
// rows were written so.
var rowTables = [...]struct {
	name    string
	cols    []column
	index   string
	batch   int     // rows per INSERT at most (insertBatch when 0)
	columns string  // cols' names, as an INSERT lists them
	order   []field // the fields of index's columns
	unnest  string  // the INSERT of all its rows from arrays (arrayStatements)
}{
	{name: "search_token", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"system", fA}, {"code", fB}}, index: "pid, code, system, rid"},
	{name: "search_string", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"norm", fA}, {"exact", fB}}, index: "pid, norm, rid"},
	{name: "search_date", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"low", fX}, {"high", fY}}, index: "pid, low, high, rid"},
	{name: "search_reference", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"target_type", fA}, {"target_id", fB}, {"url", fC}}, index: "pid, target_id, target_type, rid"},
	{name: "search_quantity", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"value", fF}, {"system", fA}, {"code", fB}}, index: "pid, code, value, rid"},
	{name: "search_number", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"value", fF}}, index: "pid, value, rid"},
	{name: "search_uri", cols: []column{{"rid", fRid}, {"pid", fPid}, {"grp", fGrp}, {"value", fA}}, index: "pid, value, rid"},
	{name: "search_token_patient", cols: []column{{"rid", fRid}, {"pid", fPid}, {"patient", fA}, {"code", fB}, {"system", fC}}, index: "pid, patient, code, rid, system"},
	{name: "search_date_patient", cols: []column{{"rid", fRid}, {"pid", fPid}, {"patient", fA}, {"low", fX}, {"high", fY}}, index: "pid, patient, rid, low, high"},
	{name: "search_compartment", cols: []column{{"rid", fRid}, {"patient_id", fA}}, index: "patient_id, rid", batch: compartmentBatch},
}

// The first of the tables by patient, and the compartment table, in
// rowTables.
const (
	byPatientRows   = 7
	compartmentRows = byPatientRows + 2
)

func init() {
	for i, t := range byPatientTables {
		if rowTables[byPatientRows+i].name != t.name {
			panic("sqlstore: rowTables does not follow byPatientTables")
		}
	}
	for t := range rowTables {
		rt := &rowTables[t]
		if rt.batch == 0 {
			rt.batch = insertBatch
		}
		names := make([]string, len(rt.cols))
		for i, c := range rt.cols {
			names[i] = c.name
		}
		rt.columns = strings.Join(names, ", ")
		for _, c := range strings.Split(rt.index, ", ") {
			i := slices.Index(names, c)
			if i < 0 {
				panic("sqlstore: " + rt.name + " has no column " + c)
			}
			rt.order = append(rt.order, rt.cols[i].field)
		}
		arrays := make([]string, len(rt.cols))
		for i, c := range rt.cols {
			arrays[i] = "?::" + c.field.arrayType()
		}
		rt.unnest = "INSERT INTO " + rt.name + " (" + rt.columns + ") SELECT * FROM unnest(" + strings.Join(arrays, ", ") + ")"
	}
}

// insertSQL caches the INSERT texts per verb, table and row count.
var insertSQL sync.Map // insertKey → string

type insertKey struct {
	verb     string
	table, n int
}

// insertRows is the INSERT of n rows into rowTables[table], with verb
// (Dialect.AppendInsert): on SQLite "INSERT OR FAIL", which keeps no
// statement journal. A multi-row INSERT that may abort half-way copies
// each page it changes to that journal first, so as to undo itself alone;
// a failed index row fails the whole unit of work anyway. synthea-120's
// import spent 1.3 s of the writer's 22 s copying pages there.
func insertRows(verb string, table, n int) string {
	k := insertKey{verb, table, n}
	if s, ok := insertSQL.Load(k); ok {
		return s.(string)
	}
	t := rowTables[table]
	row := "(?" + strings.Repeat(", ?", len(t.cols)-1) + ")"
	s := verb + " INTO " + t.name + " (" + t.columns + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	insertSQL.Store(k, s)
	return s
}

// row is one index row of any table: the fields its columns use
// (rowTables[t].cols), the others zero. Typed fields, rather than a row of
// values, keep the sort of a unit of work's rows (on SQLite, in the only
// writer) free of interface comparisons and of an allocation per value.
type row struct {
	rid, pid int64
	grp      int
	a, b, c  string
	x, y     int64
	f        float64
}

// field names a field of row.
type field uint8

const (
	fRid field = iota
	fPid
	fGrp
	fA
	fB
	fC
	fX
	fY
	fF
)

// column is a table's column and the row field that holds it.
type column struct {
	name  string
	field field
}

// compare orders two rows by one field as the databases order its column:
// integers and numbers by value, text in BINARY (UTF-8 byte) order.
func (f field) compare(r, s *row) int {
	switch f {
	case fRid:
		return cmp.Compare(r.rid, s.rid)
	case fPid:
		return cmp.Compare(r.pid, s.pid)
	case fGrp:
		return cmp.Compare(r.grp, s.grp)
	case fA:
		return strings.Compare(r.a, s.a)
	case fB:
		return strings.Compare(r.b, s.b)
	case fC:
		return strings.Compare(r.c, s.c)
	case fX:
		return cmp.Compare(r.x, s.x)
	case fY:
		return cmp.Compare(r.y, s.y)
	default:
		return cmp.Compare(r.f, s.f)
	}
}

// value is the field of r, as a statement argument.
func (f field) value(r *row) any {
	switch f.kind() {
	case textField:
		return f.text(r)
	case floatField:
		return r.f
	}
	return f.integer(r)
}

// The kinds of fields: what a column holds.
const (
	intField = iota
	textField
	floatField
)

// kind is what the field holds.
func (f field) kind() int {
	switch f {
	case fA, fB, fC:
		return textField
	case fF:
		return floatField
	}
	return intField
}

// arrayType is the PostgreSQL type of an array of the field's values.
func (f field) arrayType() string {
	return [...]string{intField: "bigint[]", textField: "text[]", floatField: "double precision[]"}[f.kind()]
}

// integer is an integer field of r.
func (f field) integer(r *row) int64 {
	switch f {
	case fRid:
		return r.rid
	case fPid:
		return r.pid
	case fGrp:
		return int64(r.grp)
	case fX:
		return r.x
	default:
		return r.y
	}
}

// text is a text field of r.
func (f field) text(r *row) string {
	switch f {
	case fA:
		return r.a
	case fB:
		return r.b
	default:
		return r.c
	}
}

// array is the field of rows[idx[0]], rows[idx[1]], …: a typed slice, which
// the driver sends as one array argument.
func (f field) array(rows []row, idx []int32) any {
	switch f.kind() {
	case textField:
		out := make([]string, len(idx))
		for k, i := range idx {
			out[k] = f.text(&rows[i])
		}
		return out
	case floatField:
		out := make([]float64, len(idx))
		for k, i := range idx {
			out[k] = rows[i].f
		}
		return out
	}
	out := make([]int64, len(idx))
	for k, i := range idx {
		out[k] = f.integer(&rows[i])
	}
	return out
}

// indexRows are index rows by table (rowTables).
type indexRows struct {
	rows [len(rowTables)][]row
	n    int
}

func (r *indexRows) put(table int, rw row) {
	r.rows[table] = append(r.rows[table], rw)
	r.n++
}

// rowStatements appends the statements that write rows: one per table
// where the dialect takes arrays (Dialect.ArrayInsert), else multi-row
// INSERTs.
func (db *DB) rowStatements(stmts []Statement, rows *indexRows) []Statement {
	if db.d.ArrayInsert {
		return rows.arrayStatements(stmts)
	}
	return rows.statements(stmts, db.d.AppendInsert)
}

// eachTable calls fn for each table with rows, with the positions of its
// rows in the order of its value index.
func (r *indexRows) eachTable(fn func(t int, rows []row, idx []int32)) {
	var idx []int32
	for t, rows := range r.rows {
		if len(rows) == 0 {
			continue
		}
		order := rowTables[t].order
		// Sort positions, not the rows themselves (80 bytes each).
		idx = idx[:0]
		for i := range rows {
			idx = append(idx, int32(i))
		}
		slices.SortFunc(idx, func(i, j int32) int {
			for _, f := range order {
				if c := f.compare(&rows[i], &rows[j]); c != 0 {
					return c
				}
			}
			return 0
		})
		fn(t, rows, idx)
	}
}

// statements appends the INSERTs of the rows (verb INTO, see insertRows),
// each table's in the order of its value index: a power of two rows each,
// rowTables[t].batch at most, the largest first.
func (r *indexRows) statements(stmts []Statement, verb string) []Statement {
	r.eachTable(func(t int, rows []row, idx []int32) {
		rt := &rowTables[t]
		for start := 0; start < len(idx); {
			n := min(rt.batch, len(idx)-start)
			n = 1 << (bits.Len(uint(n)) - 1)
			args := make([]any, 0, n*len(rt.cols))
			for _, i := range idx[start : start+n] {
				for _, c := range rt.cols {
					args = append(args, c.field.value(&rows[i]))
				}
			}
			stmts = append(stmts, Statement{Query: insertRows(verb, t, n), Args: args})
			start += n
		}
	})
	return stmts
}

// arrayStatements appends, for each table with rows, one INSERT of all of
// them from one array per column (rowTables[t].unnest), in the order of
// its value index. synthea-120's 1.7 million index rows took at least
// 54,000 INSERTs of at most 32 rows, each of their arguments encoded on
// its own and each statement bound and started by the server.
func (r *indexRows) arrayStatements(stmts []Statement) []Statement {
	r.eachTable(func(t int, rows []row, idx []int32) {
		cols := rowTables[t].cols
		args := make([]any, len(cols))
		for k, c := range cols {
			args[k] = c.field.array(rows, idx)
		}
		stmts = append(stmts, Statement{Query: rowTables[t].unnest, Args: args})
	})
	return stmts
}

// add adds the rows of ix, a resource of type typ whose parameters' keys
// are keys.
func (r *indexRows) add(rid int64, keys map[string]int64, reg *search.Registry, typ string, ix *search.Index) error {
	var missing string
	pid := func(param string) int64 {
		k, ok := keys[param]
		if !ok {
			missing = param
		}
		return k
	}
	for _, t := range ix.Tokens {
		r.put(0, row{rid: rid, pid: pid(t.Param), grp: t.Group, a: t.System, b: t.Code})
	}
	for _, t := range ix.Strings {
		r.put(1, row{rid: rid, pid: pid(t.Param), grp: t.Group, a: t.Norm, b: t.Exact})
	}
	for _, t := range ix.Dates {
		r.put(2, row{rid: rid, pid: pid(t.Param), grp: t.Group, x: t.Low, y: t.High})
	}
	for _, t := range ix.References {
		r.put(3, row{rid: rid, pid: pid(t.Param), grp: t.Group, a: t.TargetType, b: t.TargetID, c: t.URL})
	}
	for _, t := range ix.Quantities {
		r.put(4, row{rid: rid, pid: pid(t.Param), grp: t.Group, f: t.Value, a: t.System, b: t.Code})
	}
	for _, t := range ix.Numbers {
		r.put(5, row{rid: rid, pid: pid(t.Param), grp: t.Group, f: t.Value})
	}
	for _, t := range ix.URIs {
		r.put(6, row{rid: rid, pid: pid(t.Param), grp: t.Group, a: t.Value})
	}
	if missing != "" {
		// Every parameter of the registry got its key at migration.
		return fmt.Errorf("search parameter %s.%s has no key: the database was not migrated with this registry", typ, missing)
	}
	r.byPatient(rid, keys, reg, typ, ix)
	// A Group is in the compartment of each of its members: thousands.
	for _, p := range ix.Patients {
		r.put(compartmentRows, row{rid: rid, a: p})
	}
	return nil
}

// byPatient adds the rows of the index tables by patient (migration
// 0014): each token and each date of ix once for each patient that the
// resource's `patient` parameter names. A search for a patient's
// resources with a token or a date
// (Observation?patient=…&category=laboratory, Encounter?patient=…&date=ge…)
// then reads one range of the table in rid order, where it would walk all
// of the patient's resources of the type and probe each. Only the
// parameters that US Core searches together with `patient` have such rows
// (byPatientRow): the others' searches by patient keep the walk and probe,
// and synthea-120 writes 220,000 rows fewer (a tenth of its index rows).
func (r *indexRows) byPatient(rid int64, keys map[string]int64, reg *search.Registry, typ string, ix *search.Index) {
	var patients []string
	for _, ref := range ix.References {
		if ref.Param == search.PatientParam && ref.TargetType == "Patient" && ref.TargetID != "" && !slices.Contains(patients, ref.TargetID) {
			patients = append(patients, ref.TargetID)
		}
	}
	if len(patients) == 0 {
		return
	}
	// each adds the rows of one table: n rows of ix, each with its
	// parameter and the values after the patient, equal rows once.
	each := func(table int, n int, value func(i int) (string, row)) {
		seen := make(map[row]bool)
		for i := range n {
			param, rw := value(i)
			if !byPatientRow(reg, typ, param) {
				continue
			}
			rw.rid, rw.pid = rid, keys[param]
			for _, p := range patients {
				rw.a = p
				if seen[rw] {
					continue
				}
				seen[rw] = true
				r.put(byPatientRows+table, rw)
			}
		}
	}
	each(tokensByPatient, len(ix.Tokens), func(i int) (string, row) {
		t := ix.Tokens[i]
		return t.Param, row{b: t.Code, c: t.System}
	})
	each(datesByPatient, len(ix.Dates), func(i int) (string, row) {
		d := ix.Dates[i]
		return d.Param, row{x: d.Low, y: d.High}
	})
}

// byPatientTables are the index tables by patient (migration 0014), in the
// order a walk prefers them (search.go, patientWalk): a token's rows are
// keyed by code, so the walk reads only the patient's resources that have
// it; a date's by rid, so the walk reads the patient's dates of the
// parameter and keeps those in range, without a probe.
var byPatientTables = []struct {
	of    search.Table
	name  string
	walks func(where search.Expr) bool // the conditions a walk of it serves
}{
	tokensByPatient: {search.TokenTable, "search_token_patient", oneCode},
	datesByPatient:  {search.DateTable, "search_date_patient", func(where search.Expr) bool { return where != nil }},
}

// The indexes of byPatientTables.
const (
	tokensByPatient = iota
	datesByPatient
)

// byPatientRow reports whether the rows of parameter param of typ go into
// the index tables by patient, keyed by the target of the resource's
// search.PatientParam: those of a parameter that a US Core search
// parameter combination uses with `patient` (search.CombinedWithPatient;
// never a composite's component, "code$0", nor a modifier's rows,
// "code:text"). The set is part of the registry's fingerprint: when it
// changes, stored resources are re-indexed.
func byPatientRow(reg *search.Registry, typ, param string) bool {
	return reg.CombinedWithPatient(typ, param)
}

const fingerprintKey = "fingerprint"

// Reindex rebuilds the index rows of every current resource when the
// search parameter set differs from the one they were built with (or
// always, when force is set), and records the new set. It works in
// batches, each its own unit of work, so that it can run beside a live
// server; a search during the run may miss resources of a batch not yet
// done. It returns how many resources it re-indexed.
func (db *DB) Reindex(ctx context.Context, force bool) (n int, err error) {
	defer wrap(&err, "store.Reindex")
	if db.reg == nil {
		return 0, errors.New("no search registry configured")
	}
	want := db.reg.Fingerprint()
	var have string
	err = db.drv.QueryRow(ctx, db.rb.rebind("SELECT value FROM search_state WHERE name = ?"), []any{fingerprintKey}, &have)
	if err != nil && !errors.Is(err, ErrNoRows) {
		return 0, err
	}
	if have == want && !force {
		return 0, nil
	}
	const batch = 500
	after := int64(0)
	for {
		done := false
		err := db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
			rows, err := tx.Query(ctx, `SELECT r.rid, r.type, r.deleted, v.body FROM resources r
JOIN resource_versions v ON v.rid = r.rid AND v.version_id = r.version_id
WHERE r.rid > ? ORDER BY r.rid LIMIT ?`, after, batch)
			if err != nil {
				return err
			}
			type item struct {
				rid int64
				v   store.Version
			}
			var items []item
			for rows.Next() {
				var it item
				if err := rows.Scan(&it.rid, &it.v.Type, &it.v.Deleted, &it.v.Body); err != nil {
					rows.Close()
					return err
				}
				items = append(items, it)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			var stmts []Statement
			for _, it := range items {
				if it.v.Deleted {
					it.v.Body = nil
				}
				if stmts, err = tx.indexStatements(ctx, stmts, it.rid, &it.v, false); err != nil {
					return fmt.Errorf("rid %d: %w", it.rid, err)
				}
			}
			if err := tx.ExecBatch(ctx, stmts); err != nil {
				return err
			}
			if len(items) < batch {
				done = true
			}
			if len(items) > 0 {
				after = items[len(items)-1].rid
			}
			n += len(items)
			return nil
		})
		if err != nil {
			return n, err
		}
		if done {
			break
		}
	}
	err = db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO search_state (name, value) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value`, fingerprintKey, want)
		return err
	})
	return n, err
}

// AfterBulkLoad prepares the database for queries after a bulk load: the
// dialect's BulkLoaded statements, or else Analyze.
func (db *DB) AfterBulkLoad(ctx context.Context) error {
	if len(db.d.BulkLoaded) == 0 {
		return db.Analyze(ctx)
	}
	for _, stmt := range db.d.BulkLoaded {
		if _, err := db.drv.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("store.AfterBulkLoad: %w", err)
		}
	}
	return nil
}

// Analyze refreshes the query planner's statistics. The search queries
// depend on them to start from the most selective index: without them
// SQLite guesses, and a guess that scans every Observation to find one
// patient's costs a thousand times the right plan. Run it after loading
// data in bulk.
func (db *DB) Analyze(ctx context.Context) error {
	return db.runStatements(ctx, "store.Analyze", db.d.Analyze)
}

// RefreshStatistics is the server's periodic Analyze, at start and now and
// then: the dialect's Refresh statements, which analyze only what changed
// enough to matter, or else Analyze.
func (db *DB) RefreshStatistics(ctx context.Context) error {
	if len(db.d.Refresh) == 0 {
		return db.Analyze(ctx)
	}
	return db.runStatements(ctx, "store.RefreshStatistics", db.d.Refresh)
}

// runStatements runs stmts in one unit of work.
func (db *DB) runStatements(ctx context.Context, what string, stmts []string) error {
	return db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		for _, stmt := range stmts {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		return nil
	})
}
