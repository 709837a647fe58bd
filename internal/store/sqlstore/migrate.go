package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"regexp"
	"slices"
	"strconv"
)

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

type migration struct {
	version int64
	name    string
}

// Migrate applies the dialect's migrations that are not yet recorded in
// schema_migrations, in order, in one transaction. It is idempotent and safe
// to run from several processes at once: the transaction takes the write lock
// first (BEGIN IMMEDIATE on SQLite, Dialect.MigrationLock on PostgreSQL), so
// a second migrator waits and then finds nothing left to do.
func (db *DB) Migrate(ctx context.Context) error {
	return db.MigrateTo(ctx, math.MaxInt64)
}

// MigrateTo is Migrate up to and including version last: tests use it to
// build a database as an older release left it and then upgrade it.
func (db *DB) MigrateTo(ctx context.Context, last int64) (err error) {
	defer wrap(&err, "store.Migrate(%s)", db.d.Name)
	list, err := migrations(db.d.Migrations)
	if err != nil {
		return err
	}
	tx, err := db.drv.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if db.d.MigrationLock != "" {
		if _, err := tx.Exec(ctx, db.d.MigrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return err
	}
	applied := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	insert := db.rb.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
	for _, m := range list {
		if applied[m.version] || m.version > last {
			continue
		}
		body, err := fs.ReadFile(db.d.Migrations, m.name)
		if err != nil {
			return err
		}
		// No arguments: the backends run it as a script of several
		// statements.
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, insert, m.version, m.name, toMicro(db.now())); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	var keys paramKeys
	if last >= paramsMigration {
		if keys, err = db.loadParamKeys(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if keys != nil {
		// Only keys that were committed: a failed commit leaves the
		// store with the keys it had.
		db.pids.Store(&keys)
	}
	return nil
}

// migrations lists the numbered migrations of fsys in order.
func migrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, fmt.Errorf("the dialect has no migrations")
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var list []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		if len(list) > 0 && list[len(list)-1].version == v {
			return nil, fmt.Errorf("two migrations numbered %d", v)
		}
		list = append(list, migration{version: v, name: e.Name()})
	}
	slices.SortFunc(list, func(a, b migration) int { return int(a.version - b.version) })
	if len(list) == 0 {
		return nil, fmt.Errorf("no migrations found")
	}
	return list, nil
}
