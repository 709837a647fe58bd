package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Index rows are written by Tx.Put in the resource's own unit of work, so
// that every writer (REST, bundles, import) keeps the indexes current
// without knowing about them.

// indexTables are the index tables with their value columns, in the order
// the rows of a search.Index are written.
var indexTables = []struct {
	name string
	cols string // value columns after rid, pid, grp
	n    int    // their number
}{
	{"search_token", "system, code", 2},
	{"search_string", "norm, exact", 2},
	{"search_date", "low, high", 2},
	{"search_reference", "target_type, target_id, url", 3},
	{"search_quantity", "value, system, code", 3},
	{"search_number", "value", 1},
	{"search_uri", "value", 1},
}

// insertBatch is how many rows one INSERT writes at most: few statement
// texts to prepare, few round trips per resource.
const insertBatch = 32

// compartmentBatch is how many compartment rows one INSERT writes at most,
// far below the databases' limits on parameters per statement.
const compartmentBatch = 500

// insertSQL caches the INSERT text per table and row count.
var insertSQL sync.Map // [2]int → string

func insertStatement(table, rows int) string {
	k := [2]int{table, rows}
	if s, ok := insertSQL.Load(k); ok {
		return s.(string)
	}
	t := indexTables[table]
	row := "(?, ?, ?" + strings.Repeat(", ?", t.n) + ")"
	s := "INSERT INTO " + t.name + " (rid, pid, grp, " + t.cols + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	insertSQL.Store(k, s)
	return s
}

// indexStatements appends to stmts the statements that replace the index
// rows of resource rid with those of v (none for a deletion). fresh says
// the resource has no rows yet.
func (tx *Tx) indexStatements(stmts []Statement, rid int64, v *store.Version, fresh bool) ([]Statement, error) {
	reg := tx.db.reg
	if reg == nil {
		return stmts, nil
	}
	if !fresh {
		for _, t := range indexTables {
			stmts = append(stmts, Statement{"DELETE FROM " + t.name + " WHERE rid = ?", []any{rid}})
		}
		stmts = append(stmts, Statement{"DELETE FROM search_compartment WHERE rid = ?", []any{rid}})
		for _, t := range byPatientTables {
			stmts = append(stmts, Statement{"DELETE FROM " + t.name + " WHERE rid = ?", []any{rid}})
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
	return insertIndex(stmts, rid, tx.db.paramKeys()[v.Type], v.Type, ix)
}

// insertIndex appends the INSERTs of the rows of ix, a resource of type
// typ whose parameters' keys are keys.
func insertIndex(stmts []Statement, rid int64, keys map[string]int64, typ string, ix *search.Index) ([]Statement, error) {
	var missing string
	// each adds the INSERTs of one table, insertBatch rows at most each.
	each := func(table, count int, row func(i int) (string, []any)) {
		for start := 0; start < count; start += insertBatch {
			n := min(insertBatch, count-start)
			args := make([]any, 0, n*(3+indexTables[table].n))
			for i := start; i < start+n; i++ {
				param, vals := row(i)
				pid, ok := keys[param]
				if !ok {
					missing = param
				}
				args = append(args, rid, pid)
				args = append(args, vals...)
			}
			stmts = append(stmts, Statement{insertStatement(table, n), args})
		}
	}
	each(0, len(ix.Tokens), func(i int) (string, []any) {
		r := ix.Tokens[i]
		return r.Param, []any{r.Group, r.System, r.Code}
	})
	each(1, len(ix.Strings), func(i int) (string, []any) {
		r := ix.Strings[i]
		return r.Param, []any{r.Group, r.Norm, r.Exact}
	})
	each(2, len(ix.Dates), func(i int) (string, []any) {
		r := ix.Dates[i]
		return r.Param, []any{r.Group, r.Low, r.High}
	})
	each(3, len(ix.References), func(i int) (string, []any) {
		r := ix.References[i]
		return r.Param, []any{r.Group, r.TargetType, r.TargetID, r.URL}
	})
	each(4, len(ix.Quantities), func(i int) (string, []any) {
		r := ix.Quantities[i]
		return r.Param, []any{r.Group, r.Value, r.System, r.Code}
	})
	each(5, len(ix.Numbers), func(i int) (string, []any) {
		r := ix.Numbers[i]
		return r.Param, []any{r.Group, r.Value}
	})
	each(6, len(ix.URIs), func(i int) (string, []any) {
		r := ix.URIs[i]
		return r.Param, []any{r.Group, r.Value}
	})
	if missing != "" {
		// Every parameter of the registry got its key at migration.
		return nil, fmt.Errorf("search parameter %s.%s has no key: the database was not migrated with this registry", typ, missing)
	}
	stmts = byPatient(stmts, rid, keys, ix)
	// A Group is in the compartment of each of its members: thousands.
	for start := 0; start < len(ix.Patients); start += compartmentBatch {
		chunk := ix.Patients[start:min(start+compartmentBatch, len(ix.Patients))]
		args := make([]any, 0, 2*len(chunk))
		for _, p := range chunk {
			args = append(args, rid, p)
		}
		stmts = append(stmts, Statement{"INSERT INTO search_compartment (rid, patient_id) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", "), args})
	}
	return stmts, nil
}

// byPatient appends the INSERTs of the rows of the index tables by
// patient (migration 0014): each token and each date of ix once
// for each patient that the resource's `patient` parameter names. A search
// for a patient's resources with a token or a date
// (Observation?patient=…&category=laboratory, Encounter?patient=…&date=ge…)
// then reads one range of the table in rid order, where it would walk all
// of the patient's resources of the type and probe each. Rows that no
// search pairs with a patient are left out: composite components ("$" in
// the row's name) and the :text and :of-type rows.
func byPatient(stmts []Statement, rid int64, keys map[string]int64, ix *search.Index) []Statement {
	var patients []string
	for _, r := range ix.References {
		if r.Param == patientParam && r.TargetType == "Patient" && r.TargetID != "" && !slices.Contains(patients, r.TargetID) {
			patients = append(patients, r.TargetID)
		}
	}
	if len(patients) == 0 {
		return stmts
	}
	// each adds the rows of one table: n rows of ix, each with its
	// parameter and the values after the patient, equal rows once.
	each := func(table int, n int, row func(i int) (string, [2]any)) {
		type key struct {
			pid     int64
			patient string
			vals    [2]any
		}
		var args []any
		seen := make(map[key]bool)
		rows := 0
		flush := func() {
			if rows > 0 {
				stmts = append(stmts, Statement{byPatientInsert(table, rows), args})
				args, rows = nil, 0
			}
		}
		for i := range n {
			param, vals := row(i)
			if !byPatientRow(param) {
				continue
			}
			for _, p := range patients {
				k := key{keys[param], p, vals}
				if seen[k] {
					continue
				}
				seen[k] = true
				args = append(args, rid, k.pid, p, vals[0], vals[1])
				if rows++; rows == insertBatch {
					flush()
				}
			}
		}
		flush()
	}
	each(tokensByPatient, len(ix.Tokens), func(i int) (string, [2]any) {
		t := ix.Tokens[i]
		return t.Param, [2]any{t.Code, t.System}
	})
	each(datesByPatient, len(ix.Dates), func(i int) (string, [2]any) {
		d := ix.Dates[i]
		return d.Param, [2]any{d.Low, d.High}
	})
	return stmts
}

// byPatientTables are the index tables by patient (migration 0014), in the
// order a walk prefers them (search.go, patientWalk): a token's rows are
// keyed by code, so the walk reads only the patient's resources that have
// it; a date's by rid, so the walk reads the patient's dates of the
// parameter and keeps those in range, without a probe.
var byPatientTables = []struct {
	of    search.Table
	name  string
	cols  string                       // the value columns after rid, pid, patient
	walks func(where search.Expr) bool // the conditions a walk of it serves
}{
	tokensByPatient: {search.TokenTable, "search_token_patient", "code, system", oneCode},
	datesByPatient:  {search.DateTable, "search_date_patient", "low, high", func(where search.Expr) bool { return where != nil }},
}

// The indexes of byPatientTables.
const (
	tokensByPatient = iota
	datesByPatient
)

// patientParam is the reference parameter whose target the index tables
// by patient key a resource's rows by.
const patientParam = "patient"

// byPatientRow reports whether the rows named param go into the index
// tables by patient: those of a parameter, not of a composite's component
// or of a modifier.
func byPatientRow(param string) bool {
	return !strings.ContainsAny(param, "$:")
}

// byPatientSQL caches the INSERT text per table and row count.
var byPatientSQL sync.Map // byPatientStatement → string

type byPatientStatement struct{ table, rows int }

func byPatientInsert(table, rows int) string {
	k := byPatientStatement{table, rows}
	if s, ok := byPatientSQL.Load(k); ok {
		return s.(string)
	}
	t := byPatientTables[table]
	s := "INSERT INTO " + t.name + " (rid, pid, patient, " + t.cols + ") VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", rows), ", ")
	byPatientSQL.Store(k, s)
	return s
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
				if stmts, err = tx.indexStatements(stmts, it.rid, &it.v, false); err != nil {
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
