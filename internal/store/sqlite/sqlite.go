package sqlite

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"smartfhir/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// busyTimeout is how long a connection waits for another's lock — another
// process's included — before SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Open opens (creating the file and its directory if missing) the SQLite
// database at path. It does not migrate; call Migrate.
//
// Settings (sqlite.org/pragma.html): WAL so that readers never block the
// writer, synchronous=NORMAL (durable at checkpoints, safe in WAL),
// busy_timeout so that a second process writing the same file waits its
// turn, foreign keys on. temp_store=MEMORY keeps statement journals of
// savepoints off disk. mmap_size maps the database file: in WAL mode every
// commit (the audit log commits several times a second) makes each reader
// connection drop its page cache at its next transaction, and refilling
// it from the mapping costs no read() and no copy (without it, searches
// ran at a third of their speed under a steady audit load). Reads use a pool of query-only connections, one per
// core; writes use a single connection whose transactions begin IMMEDIATE,
// taking the file's write lock at once so that they never fail part-way
// with SQLITE_BUSY.
func Open(ctx context.Context, path string, cfg sqlstore.Config) (*sqlstore.DB, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		// The driver reads everything after "?" as its parameters.
		return nil, fmt.Errorf("sqlite.Open(%q): not a usable database path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite.Open(%q): %w", path, err)
		}
	}
	base := path + "?" + url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"cache_size(-65536)",
		fmt.Sprintf("wal_autocheckpoint(%d)", checkpointPages(cfg.BulkLoad)),
		"foreign_keys(1)",
		"temp_store(MEMORY)",
		"mmap_size(2147418112)",
	}}.Encode()
	auditFile := AuditPath(path)
	writer := sql.OpenDB(connector{withAudit(auditFile, true), base + "&_txlock=immediate"})
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxIdleTime(0)
	writer.SetConnMaxLifetime(0)
	// The writer connects first: it creates the file and switches it to WAL
	// before any reader looks at it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite.Open(%q): %w", path, err)
	}
	reader := sql.OpenDB(connector{withAudit(auditFile, false), base + "&" + url.Values{"_pragma": {"query_only(1)"}}.Encode()})
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	reader.SetConnMaxIdleTime(0)
	reader.SetConnMaxLifetime(0)
	if err := reader.PingContext(ctx); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite.Open(%q): %w", path, err)
	}
	if err := checkAuditLog(ctx, writer, auditFile); err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("sqlite.Open(%q): %w", path, err)
	}
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	d := sqlstore.Dialect{
		Name:       "sqlite",
		Migrations: migrations,
		Retryable:  isBusy,
		UniqueViolation: func(err error) bool {
			var e *sqlite.Error
			return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
		},
		// Writers are serial; only a busy file (another process holding the
		// lock past busy_timeout) is worth another try.
		Attempts:     3,
		Backoff:      50 * time.Millisecond,
		GroupCommit:  true,
		AppendInsert: "INSERT OR FAIL",
		// A bounded sample per index keeps ANALYZE to a fraction of a
		// second on millions of rows; the plans need proportions, not
		// exact counts.
		Analyze: []string{"PRAGMA analysis_limit = 1000", "ANALYZE"},
		// While serving, only the tables that changed enough since their
		// last analysis (sqlite.org/pragma.html#pragma_optimize; 0x10000:
		// every table, not only those this connection used). A full
		// ANALYZE counts every table's rows: on a 5 GB database it held
		// the write lock for 8 s at each start and each hour.
		Refresh: []string{"PRAGMA optimize = 0x10002"},
	}
	drv := &driver{reader: reader, writer: writer, bulk: cfg.BulkLoad}
	if cfg.ReadCacheBytes > 0 {
		if w := drv.watchWALIndex(ctx, path, base); w != nil {
			return sqlstore.New(walDriver{drv, w}, d, cfg), nil
		}
	}
	return sqlstore.New(drv, d, cfg), nil
}

// watchWALIndex maps the header of the database's wal-index for the read
// cache, or returns nil (the store then reads without the cache). SQLite
// deletes the -shm file when the last connection of any process closes the
// database, and the next one makes a new file, which a mapping of the old
// one would never see change. So one connection of its own, which nothing
// else uses, holds the database open as long as the store is: having read
// it, it keeps the wal-index's shared lock, and no other process can be the
// last to close.
func (d *driver) watchWALIndex(ctx context.Context, path, dsn string) *walIndex {
	d.holdDB = sql.OpenDB(connector{withAudit(AuditPath(path), false), dsn + "&" + url.Values{"_pragma": {"query_only(1)"}}.Encode()})
	var err error
	if d.hold, err = d.holdDB.Conn(ctx); err == nil {
		var v int
		if err = d.hold.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&v); err == nil {
			var w *walIndex
			if w, err = mapWALIndex(path); err == nil {
				return w
			}
		}
	}
	d.closeHold()
	return nil
}

// closeHold closes the connection watchWALIndex holds, if any.
func (d *driver) closeHold() error {
	var err error
	if d.hold != nil {
		err = d.hold.Close()
		d.hold = nil
	}
	if d.holdDB != nil {
		err = errors.Join(err, d.holdDB.Close())
		d.holdDB = nil
	}
	return err
}

// walDriver is a driver whose database's wal-index header is mapped: a
// sqlstore.Generationer.
type walDriver struct {
	*driver
	*walIndex
}

// checkpointPages is the size of the write-ahead log, in pages, at which a
// commit copies it into the database file. A checkpoint copies each page
// once however often the log holds it, so rarer checkpoints copy the hot
// pages of the search indexes fewer times: for a bulk load, 100,000 pages
// (400 MB) made synthea-120's import about 10 % faster than 10,000
// (2,361–2,644 against 2,207–2,472 resources/s, interleaved runs). A server
// keeps 10,000 (40 MB), so that no single request pays for copying 400 MB.
func checkpointPages(bulk bool) int {
	if bulk {
		return 100_000
	}
	return 10_000
}

// auditMigration is the migration that moved the audit log's tables into
// its own file (0008_audit_terms.sql).
const auditMigration = 8

// checkAuditLog fails when the database's migrations put the audit log's
// tables in file and the file holds none: it was deleted, or the database
// was copied or restored without it. Attaching a missing file makes an
// empty one, and every audited request would then wait for a log that
// cannot be written.
func checkAuditLog(ctx context.Context, db *sql.DB, file string) error {
	var migrated, tables int
	err := db.QueryRowContext(ctx, `SELECT
	(SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'),
	(SELECT COUNT(*) FROM audit.sqlite_master WHERE type = 'table')`).Scan(&migrated, &tables)
	if err != nil || migrated == 0 || tables > 0 {
		return err
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", auditMigration).Scan(&migrated); err != nil {
		return err
	}
	if migrated > 0 {
		return fmt.Errorf("the audit log %s has none of its tables, which the database's migrations put there: "+
			"it was deleted, or the database was copied or restored without it; restore it with the database", file)
	}
	return nil
}

// AuditPath is the file of the audit log (internal/audit) that belongs to
// the database at path: "smartfhir.db" keeps it in "smartfhir-audit.db".
// Every connection attaches it as the schema "audit", where migration 0008
// put the log's tables; statements name them unqualified. In a file of its
// own, the log's frequent commits leave the page caches of the resources'
// readers valid (WAL readers drop their cache after any commit to the file
// they read).
func AuditPath(path string) string {
	ext := filepath.Ext(path)
	if ext == "" || strings.ContainsRune(ext, '/') {
		return path + "-audit"
	}
	return strings.TrimSuffix(path, ext) + "-audit" + ext
}

// withAudit is a driver whose connections attach the audit log's file;
// the writer's also switch it to WAL (which the file remembers).
func withAudit(file string, writer bool) *sqlite.Driver {
	d := &sqlite.Driver{}
	d.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		ctx := context.Background()
		if _, err := c.ExecContext(ctx, "ATTACH DATABASE ? AS audit", []sqldriver.NamedValue{{Ordinal: 1, Value: file}}); err != nil {
			return fmt.Errorf("attaching the audit log %s: %w", file, err)
		}
		// The settings of the database's own DSN apply to main only; an
		// attached file starts with SQLite's defaults (a 2 MB cache, no
		// mapping). The writer appends to the log's term index, a B-tree
		// keyed by patient, client and user: with a 2 MB cache each batch's
		// inserts read most of its pages back with pread (a tenth of the
		// server's CPU on searches across many patients). Readers map it
		// for AuditEvent searches.
		pragmas := []string{"PRAGMA audit.synchronous = NORMAL", "PRAGMA audit.mmap_size = 2147418112"}
		if writer {
			pragmas = append(pragmas, "PRAGMA audit.journal_mode = WAL", "PRAGMA audit.cache_size = -65536")
		}
		for _, p := range pragmas {
			if _, err := c.ExecContext(ctx, p, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	return d
}

// connector opens connections to one data source name with one driver.
type connector struct {
	drv *sqlite.Driver
	dsn string
}

func (c connector) Connect(context.Context) (sqldriver.Conn, error) { return c.drv.Open(c.dsn) }
func (c connector) Driver() sqldriver.Driver                        { return c.drv }

// isBusy reports SQLITE_BUSY and SQLITE_LOCKED in all their extended forms.
func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// driver is a sqlstore.Driver on two database/sql pools.
type driver struct {
	reader, writer *sql.DB
	readStmts      sync.Map // query → *sql.Stmt on reader
	writeStmts     sync.Map // query → *sql.Stmt on writer

	// A statement cannot be prepared on the writer pool while its one
	// connection is in a transaction, so a statement first met in a
	// transaction is prepared there for once and queued here; the next
	// Begin, holding no connection yet, prepares it for good.
	mu      sync.Mutex
	pending map[string]bool

	bulk bool // opened for a bulk load (sqlstore.Config.BulkLoad)

	// hold keeps the database open while its wal-index is mapped
	// (watchWALIndex).
	holdDB *sql.DB
	hold   *sql.Conn
}

// preparePending prepares the statements queued by earlier transactions.
func (d *driver) preparePending(ctx context.Context) {
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	for q := range pending {
		// An error (say, a table a rolled-back migration made) only means
		// the statement stays unprepared; its next use reports the error.
		_, _ = stmt(ctx, &d.writeStmts, d.writer, q)
	}
}

// stmt returns the prepared statement for query on db, preparing it once.
// database/sql re-prepares it lazily on each pooled connection.
func stmt(ctx context.Context, cache *sync.Map, db *sql.DB, query string) (*sql.Stmt, error) {
	if s, ok := cache.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := cache.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

func (d *driver) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return 0, errors.New("sqlite: Exec outside a transaction; use Transact")
}

func (d *driver) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	s, err := stmt(ctx, &d.readStmts, d.reader, query)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// QueryRow runs a statement that reads one row: a read by id, a token
// lookup. It is not cancelled with ctx: such a statement takes
// microseconds, and watching a cancellable context costs database/sql and
// the SQLite driver a goroutine each per statement.
func (d *driver) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	s, err := stmt(ctx, &d.readStmts, d.reader, query)
	if err != nil {
		return err
	}
	rows, err := s.QueryContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		return err
	}
	return scanOne(rows, dest)
}

func (d *driver) Begin(ctx context.Context) (sqlstore.DriverTx, error) {
	d.preparePending(ctx)
	tx, err := d.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &driverTx{d: d, tx: tx}, nil
}

func (d *driver) Ping(ctx context.Context) error {
	if err := d.writer.PingContext(ctx); err != nil {
		return err
	}
	return d.reader.PingContext(ctx)
}

func (d *driver) Close() error {
	var err error
	if d.bulk {
		// Leave the log copied into the database file: a server reading
		// the file beside us reads pages still in the log with a system
		// call each, not through its memory map.
		_, err = d.writer.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	}
	// The wal-index stays mapped (one page): a Read racing with Close
	// then fails in its pool instead of faulting on an unmapped page.
	return errors.Join(err, d.reader.Close(), d.writer.Close(), d.closeHold())
}

type driverTx struct {
	d  *driver
	tx *sql.Tx
}

// stmt returns query prepared on the writer connection, bound to the
// transaction. Statements without arguments are not prepared: migrations
// are scripts of several statements.
func (t *driverTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := t.d.writeStmts.Load(query); ok {
		// Reuses the statement already prepared on the writer connection.
		return t.tx.StmtContext(ctx, s.(*sql.Stmt)), nil
	}
	t.d.mu.Lock()
	if t.d.pending == nil {
		t.d.pending = map[string]bool{}
	}
	t.d.pending[query] = true
	t.d.mu.Unlock()
	return t.tx.PrepareContext(ctx, query)
}

func (t *driverTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if len(args) == 0 {
		res, err = t.tx.ExecContext(ctx, query)
	} else {
		var s *sql.Stmt
		if s, err = t.stmt(ctx, query); err != nil {
			return 0, err
		}
		res, err = s.ExecContext(ctx, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *driverTx) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (t *driverTx) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return err
	}
	return scanRow(s.QueryRowContext(ctx, args...), dest)
}

func (t *driverTx) Commit(ctx context.Context) error   { return t.tx.Commit() }
func (t *driverTx) Rollback(ctx context.Context) error { return t.tx.Rollback() }

func scanRow(row *sql.Row, dest []any) error {
	err := row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

// scanOne scans the first of rows into dest and closes rows. A []byte
// destination receives the driver's own copy of the value:
// modernc.org/sqlite copies each BLOB value into a fresh slice that it
// never reuses, so the second copy database/sql makes for a *[]byte (half
// of what a read by id allocated) is skipped.
// TestScanOneKeepsBytes guards that assumption.
func scanOne(rows *sql.Rows, dest []any) error {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sqlstore.ErrNoRows
	}
	var raw [8]sql.RawBytes
	scan := make([]any, len(dest))
	for i, d := range dest {
		scan[i] = d
		if _, ok := d.(*[]byte); ok && i < len(raw) {
			scan[i] = &raw[i]
		}
	}
	if err := rows.Scan(scan...); err != nil {
		return err
	}
	for i, d := range dest {
		if b, ok := d.(*[]byte); ok && i < len(raw) {
			*b = raw[i]
		}
	}
	return rows.Close()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
