package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"smartfhir/internal/fhir"
)

// Group commit. Where the database has a single writer (SQLite), units of
// work from concurrent callers wait for it one after the other, and each
// COMMIT appends every page it changed to the write-ahead log: a resource
// and its index rows touch dozens of B-tree pages, most of them the same
// pages the next resource touches. The committer instead runs the units
// that are waiting, in arrival order, inside one database transaction,
// each in a SAVEPOINT of its own so that a failing unit is undone alone,
// and commits them together: the shared pages are written once. A unit
// sees the writes of the units before it, exactly as if they had committed
// just before it began. Nothing is reported to a caller before the COMMIT
// that makes its unit durable.

// maxGroup bounds the units in one transaction, so that one COMMIT's
// latency stays short.
const maxGroup = 64

type groupUnit struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *Tx) error
	done chan error
}

type committer struct {
	db    *DB
	units chan *groupUnit
	quit  chan struct{}
	ended chan struct{}
}

func newCommitter(db *DB) *committer {
	c := &committer{db: db, units: make(chan *groupUnit), quit: make(chan struct{}), ended: make(chan struct{})}
	go c.loop()
	return c
}

// run submits a unit and waits for its outcome.
func (c *committer) run(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	u := &groupUnit{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case c.units <- u:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.quit:
		return errors.New("store: closed")
	}
	// Once submitted, the unit's outcome must be awaited: it may already
	// be part of a transaction about to commit.
	return <-u.done
}

func (c *committer) close() {
	close(c.quit)
	<-c.ended
}

func (c *committer) loop() {
	defer close(c.ended)
	batch := make([]*groupUnit, 0, maxGroup)
	for {
		select {
		case u := <-c.units:
			batch = append(batch[:0], u)
		case <-c.quit:
			return
		}
	more:
		for len(batch) < maxGroup {
			select {
			case u := <-c.units:
				batch = append(batch, u)
			default:
				break more
			}
		}
		c.commit(batch)
	}
}

// commit runs the batch in one transaction and reports each unit's outcome.
func (c *committer) commit(batch []*groupUnit) {
	db := c.db
	// The transaction outlives any one caller's context: a caller that
	// gives up must not roll back the others' work.
	ctx := context.Background()
	dtx, err := db.drv.Begin(ctx)
	if err != nil {
		for _, u := range batch {
			u.done <- fmt.Errorf("store.Transact: begin: %w", err)
		}
		return
	}
	now := db.now().UTC().Truncate(fhir.InstantPrecision)
	errs := make([]error, len(batch))
	ok := 0
	for i, u := range batch {
		if err := u.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if len(batch) == 1 {
			// Alone in the transaction, a unit needs no savepoint: its
			// failure rolls the transaction back. A savepoint would make
			// SQLite copy every page the unit changes to the statement
			// journal first.
			errs[i] = u.fn(u.ctx, &Tx{db: db, tx: dtx, now: now})
		} else {
			errs[i] = c.unit(u, &Tx{db: db, tx: dtx, now: now})
		}
		if errs[i] == nil {
			ok++
		}
		if errors.Is(errs[i], errBroken) {
			// The transaction itself failed: nothing in it can commit.
			for j := range batch {
				if errs[j] == nil {
					errs[j] = errs[i]
				}
			}
			ok = 0
			break
		}
	}
	if ok == 0 {
		_ = dtx.Rollback(ctx)
	} else if err := dtx.Commit(ctx); err != nil {
		_ = dtx.Rollback(ctx)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("store.Transact: commit: %w", err)
			}
		}
	}
	for i, u := range batch {
		u.done <- errs[i]
	}
}

// errBroken marks a failure of the savepoint statements themselves, after
// which the transaction cannot be trusted.
var errBroken = errors.New("store: group transaction broken")

// unit runs one unit of work in a savepoint of the group transaction.
func (c *committer) unit(u *groupUnit, tx *Tx) error {
	if _, err := tx.tx.Exec(u.ctx, "SAVEPOINT unit"); err != nil {
		return fmt.Errorf("%w: savepoint: %v", errBroken, err)
	}
	err := u.fn(u.ctx, tx)
	// The savepoint statements run even when the caller's context has
	// ended: the transaction must be left consistent for the others.
	bg := context.WithoutCancel(u.ctx)
	if err != nil {
		if _, e := tx.tx.Exec(bg, "ROLLBACK TO unit"); e != nil {
			return fmt.Errorf("%w: rollback to savepoint: %v (after %v)", errBroken, e, err)
		}
	}
	if _, e := tx.tx.Exec(bg, "RELEASE unit"); e != nil {
		return fmt.Errorf("%w: release savepoint: %v", errBroken, e)
	}
	return err
}
