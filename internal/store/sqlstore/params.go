package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Parameter keys. An index row names its search parameter by a small
// integer, the pid of the (resource type, parameter code) pair in
// search_params, rather than by the two texts: the rows and the index
// entries they make are a third smaller, and the comparisons a B-tree
// step makes start with an integer. The value indexes start with it,
// (pid, value…, rid); the probe keys follow the rid with it, (rid, pid,
// value…).
//
// Keys are given when the database is migrated (MigrateTo) to every
// parameter the registry may write, and are never changed or reused: a
// server and `smartfhir import` beside it, or two releases one after the
// other, read the same table. A pair unknown to the table is a parameter
// no process has written, so no index row has it.

// paramsMigration is the migration that creates search_params and moves
// the index rows to their keys.
const paramsMigration = 13

// paramKeys maps a resource type and a parameter code to its pid.
type paramKeys map[string]map[string]int64

// noKey is the pid of a parameter that has none: no row has it, so a
// lookup of it matches nothing, as it should.
const noKey int64 = -1

// key returns the pid of code on typ, or noKey.
func (k paramKeys) key(typ, code string) int64 {
	if pid, ok := k[typ][code]; ok {
		return pid
	}
	return noKey
}

// keys returns the pids of code on every type that has it, in pid order.
func (k paramKeys) keys(code string) []int64 {
	var out []int64
	for _, m := range k {
		if pid, ok := m[code]; ok {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// paramKeys returns the keys read at the last migration (nil before it).
func (db *DB) paramKeys() paramKeys {
	if p := db.pids.Load(); p != nil {
		return *p
	}
	return nil
}

// loadParamKeys gives a key to each parameter of the registry that has
// none yet and returns them all; q is the migration's transaction, which
// holds the database's write lock (SQLite) or the migration lock
// (PostgreSQL), so that two processes never give one pair two keys.
func (db *DB) loadParamKeys(ctx context.Context, q Querier) (paramKeys, error) {
	read := func() (paramKeys, error) {
		rows, err := q.Query(ctx, "SELECT pid, type, param FROM search_params")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		k := paramKeys{}
		for rows.Next() {
			var pid int64
			var typ, code string
			if err := rows.Scan(&pid, &typ, &code); err != nil {
				return nil, err
			}
			if k[typ] == nil {
				k[typ] = map[string]int64{}
			}
			k[typ][code] = pid
		}
		return k, rows.Err()
	}
	k, err := read()
	if err != nil {
		return nil, fmt.Errorf("search parameter keys: %w", err)
	}
	if db.reg != nil {
		// The pairs without a key, all of them on a new database (4,367):
		// a few multi-row INSERTs of compartmentBatch rows, well within the
		// limits on parameters per statement, rather than a round trip each.
		var args []any
		all := db.reg.IndexKeys()
		for _, typ := range slices.Sorted(maps.Keys(all)) {
			for _, code := range all[typ] {
				if _, ok := k[typ][code]; !ok {
					args = append(args, typ, code)
				}
			}
		}
		for start := 0; start < len(args); start += 2 * compartmentBatch {
			chunk := args[start:min(start+2*compartmentBatch, len(args))]
			insert := "INSERT INTO search_params (type, param) VALUES " +
				strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)/2), ", ")
			if _, err := q.Exec(ctx, db.rb.rebind(insert), chunk...); err != nil {
				return nil, fmt.Errorf("search parameter keys: %w", err)
			}
		}
		if len(args) > 0 {
			if k, err = read(); err != nil {
				return nil, fmt.Errorf("search parameter keys: %w", err)
			}
		}
	}
	return k, nil
}
