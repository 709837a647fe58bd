package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Config is what a caller may set on a DB.
type Config struct {
	// Now is the clock (STYLE.md 12); nil means time.Now.
	Now func() time.Time
	// Search is the search parameter registry. With it, Tx.Put writes the
	// index rows of every version in the same unit of work, and Search
	// runs queries; without it nothing is indexed and Search fails.
	Search *search.Registry
	// BulkLoad says the database is opened to load data in bulk (smartfhir
	// import): the backend may trade the latency of a single commit for
	// throughput.
	BulkLoad bool
	// ReadCacheBytes, when positive, lets Search take the bodies of its
	// pages from memory, keeping up to this many bytes of them; and, when
	// the driver is a Generationer, Read serve unchanged resources from
	// memory, in as many bytes again.
	ReadCacheBytes int
	// AuditSegmentEvents is how many events the audit log's term index
	// covers with one segment at least (audit.go); 0 means
	// defaultAuditSegment. Tests set a few, to cross segments.
	AuditSegmentEvents int
}

// DB is a store.Store on a SQL database.
type DB struct {
	drv Driver
	d   Dialect
	now func() time.Time
	rb  rebinder
	q   queries
	reg *search.Registry
	// group batches units of work into shared transactions
	// (Dialect.GroupCommit).
	group *committer
	// cache holds current versions for Read (Config.ReadCacheBytes,
	// with a Generationer).
	cache *readCache
	// pages holds the versions of search pages, by version: valid
	// whatever is committed since, on every backend.
	pages *readCache
	// pids are the search parameters' keys (params.go), read by Migrate.
	pids atomic.Pointer[paramKeys]
	// many remembers conditions with too many rows for a collected page
	// (collectedPage).
	many manyRows
	// auditTail is what this handle knows of the audit log's events that
	// no segment of the term index covers yet (audit.go).
	auditTail auditTail
}

var _ store.Store = (*DB)(nil)

// queries are the statements of this file, rebound once for the dialect.
type queries struct {
	read, vread, insertResource, updateResource, rid string
	// createVersion and updateVersion are insertResource and
	// updateResource followed by the version's row, in one statement
	// (Dialect.WritingCTE; empty without). Their arguments are those of
	// insertResource or updateResource, then the method and the body.
	createVersion, updateVersion string
	// createHeld writes the resources a unit of work holds
	// (Tx.holdCreate) from arrays (Dialect.ReserveRids, ArrayInsert).
	createHeld string
	// lockCurrent and versionBody are Current where rows are locked: the
	// lock is taken on resources alone, because PostgreSQL re-checks a
	// locked row that a concurrent writer changed against the rest of the
	// query, and a join to the old version would then drop the row.
	lockCurrent, versionBody string
}

// New returns a DB that runs on drv and speaks d. Backends call it from
// their Open; it does not touch the database.
func New(drv Driver, d Dialect, cfg Config) *DB {
	if d.Attempts < 1 {
		d.Attempts = 1
	}
	if d.Retryable == nil {
		d.Retryable = func(error) bool { return false }
	}
	if d.AppendInsert == "" {
		d.AppendInsert = "INSERT"
	}
	if d.UniqueViolation == nil {
		d.UniqueViolation = func(error) bool { return false }
	}
	db := &DB{drv: drv, d: d, now: cfg.Now, rb: rebinder{numbered: d.Numbered}, reg: cfg.Search}
	db.auditTail.segment = cfg.AuditSegmentEvents
	if db.auditTail.segment <= 0 {
		db.auditTail.segment = defaultAuditSegment
	}
	if db.now == nil {
		db.now = time.Now
	}
	if g, ok := drv.(Generationer); ok && cfg.ReadCacheBytes > 0 {
		db.cache = newReadCache(g.Generation, cfg.ReadCacheBytes)
	}
	if cfg.ReadCacheBytes > 0 {
		db.pages = newReadCache(nil, cfg.ReadCacheBytes)
	}
	const current = `SELECT r.version_id, r.last_updated, r.deleted, v.method, v.body
FROM resources r JOIN resource_versions v ON v.rid = r.rid AND v.version_id = r.version_id
WHERE r.type = ? AND r.id = ?`
	db.q = queries{
		read: db.rb.rebind(current),
		lockCurrent: db.rb.rebind(`SELECT rid, version_id, last_updated, deleted FROM resources
WHERE type = ? AND id = ?` + d.ForUpdate),
		versionBody: db.rb.rebind(`SELECT method, body FROM resource_versions WHERE rid = ? AND version_id = ?`),
		vread: db.rb.rebind(`SELECT v.last_updated, v.deleted, v.method, v.body FROM resource_versions v
WHERE v.rid = (SELECT rid FROM resources WHERE type = ? AND id = ?) AND v.version_id = ?`),
		// DO NOTHING rather than a unique violation: on PostgreSQL a
		// violation aborts the whole transaction, and fn may want to go on
		// after a Conflict.
		insertResource: db.rb.rebind(`INSERT INTO resources (type, id, version_id, last_updated, deleted)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (type, id) DO NOTHING RETURNING rid`),
		// The version check is in the WHERE clause so that it holds even
		// without a prior Current: on PostgreSQL a concurrent writer's
		// update makes this one re-check the row and match nothing.
		updateResource: db.rb.rebind(`UPDATE resources SET version_id = ?, last_updated = ?, deleted = ?
WHERE type = ? AND id = ? AND version_id = ? RETURNING rid`),
		rid: db.rb.rebind(`SELECT rid FROM resources WHERE type = ? AND id = ?`),
	}
	if d.WritingCTE && d.Numbered {
		// The version is inserted only if the resource's row was: no row
		// back means a Conflict, as from insertResource alone.
		db.q.createVersion = `WITH r AS (` + db.q.insertResource + `)
INSERT INTO resource_versions (rid, type, id, version_id, last_updated, deleted, method, body)
SELECT rid, $1, $2, $3, $4, $5, $6, $7 FROM r RETURNING rid`
		db.q.updateVersion = `WITH r AS (` + db.q.updateResource + `)
INSERT INTO resource_versions (rid, type, id, version_id, last_updated, deleted, method, body)
SELECT rid, $4, $5, $1, $2, $3, $7, $8 FROM r RETURNING rid`

		if d.ReserveRids != "" && d.ArrayInsert {
			// A resource's version is written only if its row was: fewer
			// versions than resources means a Conflict (Tx.flushRows).
			db.q.createHeld = `WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[]) AS v (rid, type, id, body)),
r AS (INSERT INTO resources (rid, type, id, version_id, last_updated, deleted) OVERRIDING SYSTEM VALUE
SELECT rid, type, id, 1, $5, false FROM v ON CONFLICT (type, id) DO NOTHING RETURNING rid)
INSERT INTO resource_versions (rid, type, id, version_id, last_updated, deleted, method, body)
SELECT v.rid, v.type, v.id, 1, $5, false, 'POST', v.body FROM v JOIN r ON r.rid = v.rid`
		}
	}
	if d.GroupCommit {
		db.group = newCommitter(db)
	}
	return db
}

// Dialect returns the dialect the DB speaks.
func (db *DB) Dialect() Dialect { return db.d }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.drv.Ping(ctx); err != nil {
		return fmt.Errorf("store.Ping: %w", err)
	}
	return nil
}

// Close releases the connections.
func (db *DB) Close() error {
	if db.group != nil {
		db.group.close()
	}
	return db.drv.Close()
}

// Query runs a read-only statement written with "?" placeholders outside any
// unit of work.
func (db *DB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return db.drv.Query(ctx, db.rb.rebind(query), args...)
}

// QueryRow runs a read-only statement that returns at most one row outside
// any unit of work and scans it into dest; ErrNoRows when there is none.
func (db *DB) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return db.drv.QueryRow(ctx, db.rb.rebind(query), args, dest...)
}

// Exec runs one statement written with "?" placeholders as its own unit
// of work, for tools and tests that work on the schema directly.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (n int64, err error) {
	err = db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		n, err = tx.Exec(ctx, query, args...)
		return err
	})
	return n, err
}

// Read returns the current version of a resource (store.Store.Read).
func (db *DB) Read(ctx context.Context, typ, id string) (*store.Version, error) {
	// No deferred wrap on this hot path: its arguments would be boxed on
	// every call, not only on failure.
	var g Generation
	cached := false
	if db.cache != nil {
		// The Generation is looked at before the read: what the read
		// returns is at least as new as g.
		if g, cached = db.cache.generation(); cached {
			if v := db.cache.get(g, typ, id); v != nil {
				return v, nil
			}
		}
	}
	v, err := readCurrent(ctx, db.drv, db.q.read, typ, id)
	if err != nil {
		wrap(&err, "store.Read(%q, %q)", typ, id)
		return v, err
	}
	if cached {
		db.cache.put(g, v)
	}
	return v, nil
}

// readCurrent runs the read or current statement on q.
func readCurrent(ctx context.Context, q Querier, query, typ, id string) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id}
	var lu int64
	err := q.QueryRow(ctx, query, []any{typ, id}, &v.VersionID, &lu, &v.Deleted, &v.Method, &v.Body)
	if errors.Is(err, ErrNoRows) {
		return nil, fhir.Errorf(fhir.NotFound, "%s/%s is not known", typ, id)
	}
	if err != nil {
		return nil, err
	}
	v.LastUpdated = fromMicro(lu)
	if v.Deleted {
		v.Body = nil
		return v, fhir.Errorf(fhir.Gone, "%s/%s was deleted", typ, id)
	}
	return v, nil
}

// VRead returns one version of a resource (store.Store.VRead).
func (db *DB) VRead(ctx context.Context, typ, id string, versionID int64) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id, VersionID: versionID}
	var lu int64
	err := db.drv.QueryRow(ctx, db.q.vread, []any{typ, id, versionID}, &lu, &v.Deleted, &v.Method, &v.Body)
	if errors.Is(err, ErrNoRows) {
		return nil, fhir.Errorf(fhir.NotFound, "version %d of %s/%s is not known", versionID, typ, id)
	}
	if err != nil {
		wrap(&err, "store.VRead(%q, %q, %d)", typ, id, versionID)
		return nil, err
	}
	v.LastUpdated = fromMicro(lu)
	if v.Deleted {
		v.Body = nil
		return v, fhir.Errorf(fhir.Gone, "version %d of %s/%s is a deletion", versionID, typ, id)
	}
	return v, nil
}

// Transact runs fn as one unit of work (store.Store.Transact).
func (db *DB) Transact(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	return db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error { return fn(ctx, tx) })
}

// TransactSQL is Transact for code in this module that also runs its own
// statements in the unit of work through tx. A unit of work that fails
// with a retryable error (Dialect.Retryable, a unique violation, or a Put
// that lost the race to create a resource it had seen absent) runs again
// after a backoff, up to Dialect.Attempts times; if it still fails, the error
// is a Conflict.
func (db *DB) TransactSQL(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	wait := db.d.Backoff
	for attempt := 1; ; attempt++ {
		err := db.attempt(ctx, fn)
		if err == nil || !db.retryable(err) {
			return err
		}
		if attempt >= db.d.Attempts {
			return &fhir.Error{Code: fhir.Conflict, Message: "the resource was changed concurrently; retry the request"}
		}
		// Full jitter keeps racing replicas from retrying in lockstep.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (db *DB) retryable(err error) bool {
	var r *racedError
	return errors.As(err, &r) || db.d.Retryable(err) || db.d.UniqueViolation(err)
}

// attempt runs fn once in a transaction (with the units of concurrent
// callers, under group commit).
func (db *DB) attempt(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) (err error) {
	if db.group != nil {
		return db.group.run(ctx, fn)
	}
	dtx, err := db.drv.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store.Transact: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			// The caller's context may be done already; the rollback
			// must still reach the database.
			_ = dtx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	tx := &Tx{db: db, tx: dtx, now: db.now().UTC().Truncate(fhir.InstantPrecision)}
	if err := tx.run(ctx, fn); err != nil {
		return err
	}
	if err := dtx.Commit(ctx); err != nil {
		return fmt.Errorf("store.Transact: commit: %w", err)
	}
	committed = true
	return nil
}

// Tx is a unit of work on a DB; it implements store.Tx.
type Tx struct {
	db  *DB
	tx  DriverTx
	now time.Time
	// absent holds the resources Current found unknown, so that a Put
	// creating one of them and finding it present knows it lost a race.
	absent map[[2]string]bool
	// pending holds the index rows of the resources this unit of work
	// created, not yet written (indexStatements).
	pending *indexRows
	// created counts the resources this unit of work created.
	created int
	// creates are the resources this unit of work holds (holdCreate),
	// written before its index rows; rids are rids reserved for more.
	creates []heldCreate
	rids    []int64
	// reserved is how many rids the unit reserved last.
	reserved int
}

var _ store.Tx = (*Tx)(nil)

// run runs a unit of work's fn in tx, then writes the index rows it holds
// (indexStatements).
func (tx *Tx) run(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.flushRows(ctx)
}

// Now is the fixed time of the unit of work.
func (tx *Tx) Now() time.Time { return tx.now }

// Exec runs a statement written with "?" placeholders in the unit of work.
func (tx *Tx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return tx.tx.Exec(ctx, tx.db.rb.rebind(query), args...)
}

// ExecBatch runs statements written with "?" placeholders in order, in one
// round trip where the driver can (Batcher), and returns the first error.
func (tx *Tx) ExecBatch(ctx context.Context, stmts []Statement) error {
	for i := range stmts {
		stmts[i].Query = tx.db.rb.rebind(stmts[i].Query)
	}
	if b, ok := tx.tx.(Batcher); ok {
		return b.ExecBatch(ctx, stmts)
	}
	for _, s := range stmts {
		n, err := tx.tx.Exec(ctx, s.Query, s.Args...)
		if err == nil && s.Check != nil {
			err = s.Check(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Query runs a statement written with "?" placeholders in the unit of work.
func (tx *Tx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return tx.tx.Query(ctx, tx.db.rb.rebind(query), args...)
}

// QueryRow runs a statement written with "?" placeholders that returns at
// most one row in the unit of work; ErrNoRows when there is none.
func (tx *Tx) QueryRow(ctx context.Context, query string, args []any, dest ...any) error {
	return tx.tx.QueryRow(ctx, tx.db.rb.rebind(query), args, dest...)
}

// Current returns the current version and locks the resource until the unit
// of work ends (store.Tx.Current).
func (tx *Tx) Current(ctx context.Context, typ, id string) (v *store.Version, err error) {
	defer wrap(&err, "store.Tx.Current(%q, %q)", typ, id)
	if len(tx.creates) > 0 {
		// The resource may be one of them.
		if err := tx.flushRows(ctx); err != nil {
			return nil, err
		}
	}
	if tx.db.d.ForUpdate == "" {
		// Writers are serial: the plain read holds the resource already.
		v, err = readCurrent(ctx, tx.tx, tx.db.q.read, typ, id)
	} else {
		v, err = tx.lockCurrent(ctx, typ, id)
	}
	if fhir.IsCode(err, fhir.NotFound) {
		if tx.absent == nil {
			tx.absent = map[[2]string]bool{}
		}
		tx.absent[[2]string{typ, id}] = true
	}
	return v, err
}

// lockCurrent is Current with a row lock, in two statements.
func (tx *Tx) lockCurrent(ctx context.Context, typ, id string) (*store.Version, error) {
	v := &store.Version{Type: typ, ID: id}
	var rid, lu int64
	err := tx.tx.QueryRow(ctx, tx.db.q.lockCurrent, []any{typ, id}, &rid, &v.VersionID, &lu, &v.Deleted)
	if errors.Is(err, ErrNoRows) {
		return nil, fhir.Errorf(fhir.NotFound, "%s/%s is not known", typ, id)
	}
	if err != nil {
		return nil, err
	}
	if err := tx.tx.QueryRow(ctx, tx.db.q.versionBody, []any{rid, v.VersionID}, &v.Method, &v.Body); err != nil {
		return nil, err
	}
	v.LastUpdated = fromMicro(lu)
	if v.Deleted {
		v.Body = nil
		return v, fhir.Errorf(fhir.Gone, "%s/%s was deleted", typ, id)
	}
	return v, nil
}

// Put stores a new version (store.Tx.Put) and sets v.LastUpdated to the
// unit of work's time.
func (tx *Tx) Put(ctx context.Context, v *store.Version) (err error) {
	defer wrap(&err, "store.Tx.Put(%q, %q, %d)", v.Type, v.ID, v.VersionID)
	switch {
	case v.Type == "" || v.ID == "":
		return errors.New("type and id are required")
	case v.VersionID < 1:
		return errors.New("version ids start at 1")
	case v.Deleted && v.Body != nil:
		return errors.New("a deletion has no body")
	case !v.Deleted && len(v.Body) == 0:
		return errors.New("a version needs a body")
	}
	lu := toMicro(tx.now)
	var body any = v.Body
	if v.Deleted {
		body = nil // NULL, not an empty blob
	}
	if v.VersionID == 1 && v.Method == http.MethodPost && tx.created > 0 && tx.db.q.createHeld != "" {
		return tx.holdCreate(ctx, v)
	}
	if len(tx.creates) > 0 {
		// The statements below may read or change a resource held.
		if err := tx.flushRows(ctx); err != nil {
			return err
		}
	}
	query, args := tx.db.q.insertResource, []any{v.Type, v.ID, v.VersionID, lu, v.Deleted}
	if v.VersionID > 1 {
		query, args = tx.db.q.updateResource, []any{v.VersionID, lu, v.Deleted, v.Type, v.ID, v.VersionID - 1}
	}
	// The version's row goes with the resource's where the dialect can,
	// else with the index rows.
	withVersion := true
	switch {
	case v.VersionID == 1 && tx.db.q.createVersion != "":
		query, args = tx.db.q.createVersion, append(args, v.Method, body)
	case v.VersionID > 1 && tx.db.q.updateVersion != "":
		query, args = tx.db.q.updateVersion, append(args, v.Method, body)
	default:
		withVersion = false
	}
	var rid int64
	err = tx.tx.QueryRow(ctx, query, args, &rid)
	if errors.Is(err, ErrNoRows) {
		return tx.conflict(v)
	}
	if err != nil {
		return err
	}
	var stmts []Statement
	if !withVersion {
		stmts = append(stmts, Statement{Query: insertVersionSQL, Args: []any{rid, v.Type, v.ID, v.VersionID, lu, v.Deleted, v.Method, body}})
	}
	if stmts, err = tx.indexStatements(ctx, stmts, rid, v, v.VersionID == 1); err != nil {
		return err
	}
	if len(stmts) > 0 {
		if err := tx.ExecBatch(ctx, stmts); err != nil {
			return err
		}
	}
	v.LastUpdated = tx.now
	return nil
}

// conflict is the error of a Put of v that found another version in its
// place.
func (tx *Tx) conflict(v *store.Version) error {
	c := fhir.Errorf(fhir.Conflict, "version %d of %s/%s is not the next version", v.VersionID, v.Type, v.ID)
	if v.VersionID == 1 && tx.absent[[2]string{v.Type, v.ID}] {
		return &racedError{c}
	}
	return c
}

// holdCreate is Put of a POST's new resource in a unit of work that
// created one already (a Bundle's entries): instead of a round trip to
// learn the rid the database gives it, the resource takes a rid reserved
// ahead (Dialect.ReserveRids), and its row and first version wait with the
// unit's index rows, to be written in one statement with the others held
// (createHeld), before the unit reads, searches, changes a resource or
// ends (flushRows). A POST names an id of the server's making, which no
// resource has; were it taken all the same, the statement would write
// nothing for it, and the unit fails with the Conflict Put would have
// returned. On PostgreSQL, synthea-120's import made 92,000 round trips
// fewer: 2,730/2,779 -> 3,423/3,441 resources/s in turns.
func (tx *Tx) holdCreate(ctx context.Context, v *store.Version) error {
	if len(tx.rids) == 0 {
		// A block twice the last, from 64 to 1,024: a Bundle of 700
		// entries reserves in four round trips; the rids a unit leaves
		// unused are gaps, which nothing minds.
		tx.reserved = min(max(2*tx.reserved, 64), 1024)
		var err error
		if tx.rids, err = tx.reserveNumbers(ctx, tx.db.d.ReserveRids, tx.reserved); err != nil {
			return fmt.Errorf("reserving rids: %w", err)
		}
	}
	rid := tx.rids[0]
	tx.rids = tx.rids[1:]
	tx.creates = append(tx.creates, heldCreate{v: v, rid: rid, typ: v.Type, id: v.ID, body: v.Body})
	stmts, err := tx.indexStatements(ctx, nil, rid, v, true)
	if err != nil {
		return err
	}
	if err := tx.ExecBatch(ctx, stmts); err != nil {
		return err
	}
	v.LastUpdated = tx.now
	return nil
}

// heldCreate is a resource held by its unit of work (holdCreate): its
// first version v, with body as Put was given it, under rid.
type heldCreate struct {
	v       *store.Version
	rid     int64
	typ, id string
	body    []byte
}

// errHeldConflict is the outcome of createHeld when it wrote fewer
// resources than it was given.
var errHeldConflict = errors.New("a resource held was not written")

// createStatement is the statement that writes the resources held.
func (tx *Tx) createStatement() Statement {
	n := len(tx.creates)
	rids, types, ids, bodies := make([]int64, n), make([]string, n), make([]string, n), make([][]byte, n)
	for i, c := range tx.creates {
		rids[i], types[i], ids[i], bodies[i] = c.rid, c.typ, c.id, c.body
	}
	return Statement{
		Query: tx.db.q.createHeld,
		Args:  []any{rids, types, ids, bodies, toMicro(tx.now)},
		Check: func(rows int64) error {
			if rows != int64(n) {
				return errHeldConflict
			}
			return nil
		},
	}
}

// heldConflict is the Conflict of the first of held whose id was taken
// (errHeldConflict): the resource whose rid the database does not know.
func (tx *Tx) heldConflict(ctx context.Context, held []heldCreate) error {
	rids := make([]int64, len(held))
	for i, c := range held {
		rids[i] = c.rid
	}
	rows, err := tx.Query(ctx, "SELECT rid FROM resources WHERE rid = ANY(?)", rids)
	if err != nil {
		return err
	}
	defer rows.Close()
	written := make(map[int64]bool, len(held))
	for rows.Next() {
		var rid int64
		if err := rows.Scan(&rid); err != nil {
			return err
		}
		written[rid] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range held {
		if !written[c.rid] {
			return tx.conflict(c.v)
		}
	}
	return errHeldConflict // the versions' count disagreed with the resources'
}

// reserveNumbers runs query, a statement that returns n numbers of a
// sequence for its one argument n (Dialect.ReserveRids, ReserveSeq), and
// returns them in increasing order.
func (tx *Tx) reserveNumbers(ctx context.Context, query string, n int) ([]int64, error) {
	rows, err := tx.Query(ctx, query, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]int64, 0, n)
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("got %d of %d", len(out), n)
	}
	slices.Sort(out)
	return out, nil
}

const insertVersionSQL = `INSERT INTO resource_versions (rid, type, id, version_id, last_updated, deleted, method, body)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// racedError is the Conflict of a Put that created a resource another unit
// of work created first, after Current had found it absent. Running the unit
// of work again sees the other's version and usually succeeds.
type racedError struct{ err *fhir.Error }

func (e *racedError) Error() string { return e.err.Error() }
func (e *racedError) Unwrap() error { return e.err }

// wrap adds context to an internal error. Errors the caller acts on
// (*fhir.Error) are left as they are: their message is for the client.
func wrap(errp *error, format string, args ...any) {
	if *errp == nil {
		return
	}
	var fe *fhir.Error
	if errors.As(*errp, &fe) {
		return
	}
	*errp = fmt.Errorf(format+": %w", append(args, *errp)...)
}

// Instants are stored as microseconds since the Unix epoch.
func toMicro(t time.Time) int64 { return t.UnixMicro() }

// ceilMicro is the least stored instant at or after t, so that comparisons
// with a finer-grained bound stay exact.
func ceilMicro(t time.Time) int64 {
	m := t.UnixMicro()
	if time.UnixMicro(m).Before(t) {
		m++
	}
	return m
}

func fromMicro(m int64) time.Time { return time.UnixMicro(m).UTC() }

// placeholders is n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
