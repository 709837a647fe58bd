package sqlstore

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoRows is returned by [Querier.QueryRow] when the query selects nothing.
// Drivers translate their own no-rows error into it.
var ErrNoRows = errors.New("sqlstore: no rows in result set")

// Querier runs statements that are already written for the database (the
// dialect's placeholders). Drivers cache a prepared statement per query text.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row and scans it
	// into dest; it returns ErrNoRows when there is none.
	QueryRow(ctx context.Context, query string, args []any, dest ...any) error
}

// PerRunPlanner is a Querier whose cached statements may run on a plan
// made once for any values (PostgreSQL's generic plan of a prepared
// statement, after five runs). PerRun returns a Querier whose statements
// are planned for their values at every run; a transaction's stays in the
// transaction. DB.search says which searches need it.
type PerRunPlanner interface {
	PerRun() Querier
}

// perRun returns qr's per-run planning Querier, or qr itself when its
// statements are always planned for their values (SQLite).
func perRun(qr Querier) Querier {
	if p, ok := qr.(PerRunPlanner); ok {
		return p.PerRun()
	}
	return qr
}

// GenericPlanner is a Querier whose statements PostgreSQL plans for their
// values until a plan made once for any values (a generic plan) looks no
// dearer. Generic returns a Querier whose statements run on a generic plan
// from their first run; a transaction's stays in the transaction. It is
// only for statements whose best plan does not depend on their values:
// DB.search says which.
type GenericPlanner interface {
	Generic() Querier
}

// Rows is the result of [Querier.Query].
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Driver is what a backend supplies: a pool for reads outside a unit of work
// and write transactions.
type Driver interface {
	Querier
	// Begin starts a write transaction. Its lock discipline is the
	// backend's: SQLite takes the write lock at once (BEGIN IMMEDIATE),
	// PostgreSQL runs READ COMMITTED and locks rows as it goes.
	Begin(ctx context.Context) (DriverTx, error)
	Ping(ctx context.Context) error
	Close() error
}

// DriverTx is one database transaction.
type DriverTx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Statement is one statement of a batch.
type Statement struct {
	Query string
	Args  []any
	// Check, when set, judges the number of rows the statement affected;
	// its error ends the batch as the statement's own would.
	Check func(rows int64) error
}

// Batcher is a DriverTx that sends several statements at once: a
// PostgreSQL connection pipelines them in one round trip instead of one
// each. A transaction that is not a Batcher runs them one by one.
type Batcher interface {
	// ExecBatch runs the statements in order and returns the first error,
	// a Check's included.
	ExecBatch(ctx context.Context, stmts []Statement) error
}

// Dialect is what differs between the SQL databases. Upserts need no entry:
// both backends speak INSERT … ON CONFLICT (…) DO UPDATE SET c = excluded.c.
type Dialect struct {
	// Name identifies the dialect in messages ("sqlite", "postgres").
	Name string
	// Numbered makes "?" placeholders become "$1", "$2", ….
	Numbered bool
	// ForUpdate is appended to a SELECT that must lock the rows it reads
	// until the transaction ends (" FOR UPDATE"); empty where writers are
	// serialised anyway.
	ForUpdate string
	// Migrations holds the numbered migrations (0001_name.sql, …) at its root.
	Migrations fs.FS
	// MigrationLock, when set, runs first in the migration transaction to
	// keep concurrent migrators out (e.g. pg_advisory_xact_lock).
	MigrationLock string
	// Retryable reports whether a failed unit of work may succeed when run
	// again: serialization failures, deadlocks, a busy database.
	Retryable func(error) bool
	// UniqueViolation reports whether err is a unique-constraint violation.
	UniqueViolation func(error) bool
	// Attempts is how many times a unit of work runs at most (≥ 1).
	Attempts int
	// Backoff is the wait before the first retry; it doubles each time and
	// is jittered.
	Backoff time.Duration
	// GroupCommit runs the units of work of concurrent callers together in
	// one transaction, each in a savepoint (see group.go). It suits a
	// database with a single writer, where units wait for each other anyway.
	GroupCommit bool
	// ReserveSeq, when set, is a statement that takes a count n and
	// returns n fresh audit sequence numbers, one per row, safe across
	// concurrent writers (a PostgreSQL sequence). Empty means the database
	// has a single writer, so the next numbers follow the largest stored.
	ReserveSeq string
	// AuditLock, when set, is a statement that serializes the audit log's
	// writers until their transaction ends, taken before ReserveSeq: the
	// batches of concurrent writers then hold disjoint ranges of sequence
	// numbers, which the audit index relies on (see AuditStore).
	AuditLock string
	// AppendInsert is the verb of the multi-row INSERTs of the audit log
	// and of the index rows ("INSERT" when empty). SQLite's "INSERT OR
	// FAIL" keeps no statement journal (a copy of every page the statement
	// changes, kept to undo it alone); neither needs one, as a failed
	// INSERT fails and rolls back its whole unit of work.
	AppendInsert string
	// WritingCTE says that a WITH clause may hold an INSERT or UPDATE
	// (PostgreSQL; not SQLite): Put then writes a resource's row and its
	// new version in one statement, one round trip instead of two. The
	// statement numbers its placeholders, so it needs Numbered too.
	WritingCTE bool
	// ReserveRids, when set, is a statement that returns as many new rids
	// of resources as its one argument says (PostgreSQL: the identity's
	// sequence). A unit of work that creates many resources (a Bundle)
	// then writes each new resource's rows, under a rid it reserved, with
	// its index rows, in the round trips of those (Tx.holdCreate), instead
	// of one round trip each to learn its rid. It needs WritingCTE.
	ReserveRids string
	// ArrayInsert says that a statement takes an array as one argument
	// and unnest(…) turns arrays into rows (PostgreSQL): a unit of work
	// then writes each table's index rows, and the resources it holds
	// (Tx.holdCreate, which needs ArrayInsert), in one INSERT each.
	ArrayInsert bool
	// Analyze are the statements that refresh the planner's statistics
	// (see DB.Analyze).
	Analyze []string
	// Refresh, when set, are the statements of the server's periodic
	// statistics refresh (see DB.RefreshStatistics); empty means Analyze.
	Refresh []string
	// GroupByKey says that a grouped query may select a table's columns
	// only when its primary key is among the grouping columns
	// (PostgreSQL); SQLite takes them from any row of the group.
	GroupByKey bool
	// BulkLoaded, when set, are the statements to run after a bulk load
	// instead of Analyze, one by one outside a transaction (PostgreSQL's
	// VACUUM cannot run inside one); see DB.AfterBulkLoad.
	BulkLoaded []string
	// ProbeFence, when set, ends the subquery of each probe of a walked
	// page (see walkable) so that the planner keeps it a probe of each
	// walked candidate: PostgreSQL turns an EXISTS into a join it may
	// start from, and its generic plan, made without the values, cannot
	// tell which side is smaller. " OFFSET 0" stops it there
	// (subselect.c, simplify_EXISTS_query).
	ProbeFence string
}

// rebinder rewrites "?" placeholders once per distinct query text.
type rebinder struct {
	numbered bool
	cache    sync.Map // string → string
}

// rebind returns query with the dialect's placeholders. "?" inside string
// literals is left alone; statements here never contain "?" operators.
func (r *rebinder) rebind(query string) string {
	if !r.numbered {
		return query
	}
	if q, ok := r.cache.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	inString := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	q := b.String()
	r.cache.Store(query, q)
	return q
}
