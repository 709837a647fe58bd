package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"smartfhir/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey names the advisory lock that migrators hold
// (postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
// It is an arbitrary constant: "smartf" in ASCII.
const migrationLockKey int64 = 0x736d61727466

// auditLockKey names the advisory lock that audit log writers hold from
// reserving their batch's sequence numbers until it commits.
const auditLockKey int64 = 0x736d61727467

// SQLSTATE codes (postgresql.org/docs/current/errcodes-appendix.html).
const (
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
	uniqueViolation      = "23505"
)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value DSN, as pgxpool.ParseConfig reads it). It does not migrate; call
// Migrate.
func Open(ctx context.Context, url string, cfg sqlstore.Config) (*sqlstore.DB, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, errors.New("postgres.Open: cannot parse the database URL")
	}
	// pgx prepares and caches every statement, and after five runs
	// PostgreSQL may switch a prepared statement to a generic plan, made
	// without the parameter values, when it costs no more than the values'
	// plans did: planning no longer costs each run (half a millisecond for
	// a search). Searches whose best plan depends on the values ask for
	// per-run plans (sqlstore.PerRunPlanner): they run on a second pool
	// whose sessions plan every run (plan_cache_mode=force_custom_plan),
	// so that they keep their prepared statements and are parsed once.
	// Searches whose plan does not depend on the values at all, but which
	// PostgreSQL would not trust to a generic plan, run on a third pool
	// whose sessions make one at once (sqlstore.GenericPlanner,
	// plan_cache_mode=force_generic_plan). A plan_cache_mode given in the
	// URL applies to every pool. Each pool's sessions carry its name in
	// application_name (pg_stat_activity): smartfhir (or the URL's
	// application_name), then /per-run and /generic.
	app := pc.ConnConfig.RuntimeParams["application_name"]
	if app == "" {
		app = "smartfhir"
	}
	modes := []struct{ mode, suffix string }{{"", ""}, {"force_custom_plan", "/per-run"}, {"force_generic_plan", "/generic"}}
	pools := make([]*pgxpool.Pool, 0, len(modes))
	closeAll := func() {
		for _, p := range pools {
			p.Close()
		}
	}
	for _, m := range modes {
		c := pc.Copy()
		c.ConnConfig.RuntimeParams["application_name"] = app + m.suffix
		if _, ok := pc.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok && m.mode != "" {
			c.ConnConfig.RuntimeParams["plan_cache_mode"] = m.mode
		}
		p, err := pgxpool.NewWithConfig(ctx, c)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("postgres.Open: %w", err)
		}
		pools = append(pools, p)
	}
	drv := &driver{pool: pools[0], perRun: pools[1], generic: pools[2]}
	if err := drv.Ping(ctx); err != nil {
		closeAll()
		return nil, fmt.Errorf("postgres.Open: %w", err)
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	d := sqlstore.Dialect{
		Name:          "postgres",
		Numbered:      true,
		ForUpdate:     " FOR UPDATE",
		Migrations:    migrations,
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
		Retryable: func(err error) bool {
			c := sqlState(err)
			return c == serializationFailure || c == deadlockDetected
		},
		UniqueViolation: func(err error) bool { return sqlState(err) == uniqueViolation },
		Attempts:        5,
		Backoff:         10 * time.Millisecond,
		// Autovacuum analyzes and vacuums on its own schedule; after a bulk
		// load the importer does not wait for it. VACUUM also marks the
		// new pages all-visible, which lets the covering search indexes
		// answer without visiting the table (index-only scans).
		Analyze:     []string{"ANALYZE"},
		BulkLoaded:  []string{"VACUUM (ANALYZE)"},
		GroupByKey:  true,
		WritingCTE:  true,
		ArrayInsert: true,
		// rid is GENERATED ALWAYS AS IDENTITY (migration 0001): an INSERT
		// that names it says OVERRIDING SYSTEM VALUE (sqlstore, createHeld).
		ReserveRids: "SELECT nextval(pg_get_serial_sequence('resources', 'rid')) FROM generate_series(1, ?::integer)",
		ProbeFence:  " OFFSET 0",
		ReserveSeq:  "SELECT nextval('audit_seq') FROM generate_series(1, ?::integer)",
		AuditLock:   fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", auditLockKey),
	}
	return sqlstore.New(drv, d, cfg), nil
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// driver is a sqlstore.Driver on a pgx pool. pgx prepares and caches each
// distinct statement per connection (QueryExecModeCacheStatement, the
// default), and runs argument-less statements with the simple protocol, which
// lets a migration be a script of several statements.
type driver struct {
	pool *pgxpool.Pool
	// perRun is the pool of PerRun: its sessions plan every statement
	// for its values.
	perRun *pgxpool.Pool
	// generic is the pool of Generic: its sessions plan every statement
	// once, without its values.
	generic *pgxpool.Pool
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PerRun implements sqlstore.PerRunPlanner.
func (d *driver) PerRun() sqlstore.Querier { return runner{q: d.perRun} }

// PerRun implements sqlstore.PerRunPlanner. A transaction's statements
// must stay on its connection: they run as unnamed prepared statements
// (QueryExecModeCacheDescribe: pgx caches only their descriptions, and a
// statement still takes one round trip), which PostgreSQL parses and
// plans for their values at every run.
func (t *driverTx) PerRun() sqlstore.Querier { return runner{q: t.tx, unnamed: true} }

// Generic implements sqlstore.GenericPlanner.
func (d *driver) Generic() sqlstore.Querier { return runner{q: d.generic} }

// Generic implements sqlstore.GenericPlanner. A transaction's statements
// stay on its connection, whose plans are PostgreSQL's choice.
func (t *driverTx) Generic() sqlstore.Querier { return t }

// runner is a Querier on a pool or a transaction; unnamed runs its
// statements as unnamed prepared statements.
type runner struct {
	q       querier
	unnamed bool
}

func (p runner) args(args []any) []any {
	if !p.unnamed {
		return args
	}
	return append([]any{pgx.QueryExecModeCacheDescribe}, args...)
}

func (p runner) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, p.args(args)...)
	return tag.RowsAffected(), err
}

func (p runner) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := p.q.Query(ctx, query, p.args(args)...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (p runner) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return scanRow(p.q.QueryRow(ctx, query, p.args(args)...), dest)
}

func (d *driver) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (d *driver) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (d *driver) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return scanRow(d.pool.QueryRow(ctx, query, args...), dest)
}

func (d *driver) Begin(ctx context.Context) (sqlstore.DriverTx, error) {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &driverTx{tx}, nil
}

func (d *driver) Ping(ctx context.Context) error {
	return errors.Join(d.pool.Ping(ctx), d.perRun.Ping(ctx), d.generic.Ping(ctx))
}

func (d *driver) Close() error {
	d.pool.Close()
	d.perRun.Close()
	d.generic.Close()
	return nil
}

type driverTx struct{ tx pgx.Tx }

func (t *driverTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

// ExecBatch implements sqlstore.Batcher: the statements go out in one
// pipelined round trip.
func (t *driverTx) ExecBatch(ctx context.Context, stmts []sqlstore.Statement) error {
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.Query, s.Args...)
	}
	br := t.tx.SendBatch(ctx, b)
	for _, s := range stmts {
		tag, err := br.Exec()
		if err == nil && s.Check != nil {
			err = s.Check(tag.RowsAffected())
		}
		if err != nil {
			// The unit of work fails with the first error; Close reads
			// what the server answered to the rest.
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

func (t *driverTx) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := t.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (t *driverTx) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return scanRow(t.tx.QueryRow(ctx, query, args...), dest)
}

func (t *driverTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t *driverTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

func scanRow(row pgx.Row, dest []any) error {
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}
