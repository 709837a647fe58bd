package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"smartfhir/internal/fhir"
)

// Group commit. Where the database has a single writer (SQLite), units of
// work from concurrent callers wait for it one after the other, and each
// COMMIT appends every page it changed to the write-ahead log: a resource
// and its index rows touch dozens of B-tree pages, most of them the same
// pages the next resource touches. The committer instead runs the units
// that are waiting, in arrival order, inside one database transaction, and
// commits them together: the shared pages are written once. A unit sees the
// writes of the units before it, exactly as if they had committed just
// before it began. Nothing is reported to a caller before the COMMIT that
// makes its unit durable.
//
// A unit that fails must leave nothing behind, and the others must not
// suffer for it. The group runs optimistically, without savepoints: when a
// unit fails, the transaction is rolled back, the group runs again without
// it, and the failed unit then runs alone, in a transaction of its own,
// whose outcome is the one reported (so that no answer depends on writes
// that were rolled back). Units are concurrent requests none of which has
// been answered, so running one later than it arrived is a valid order.
// The price of a failure is running the units before it once more; units
// rarely fail (a version race, a precondition, an invalid body), and a
// group holds at most maxGroup units. Savepoints per unit were tried first: SQLite copies every page a unit
// changes to the statement journal, and with the journal in memory each
// multi-row statement inside a savepoint walks the whole journal when it
// ends, so a batch of large units (an import with more than two workers)
// ran fifteen times slower than the same units one by one.

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

// commit runs the batch and reports each unit's outcome.
func (c *committer) commit(batch []*groupUnit) {
	live := batch[:0]
	for _, u := range batch {
		if err := u.ctx.Err(); err != nil {
			u.done <- err // its caller gave up before it began
		} else {
			live = append(live, u)
		}
	}
	batch = live
	var alone []*groupUnit
	for len(batch) > 0 {
		failed, err := c.runGroup(batch, len(batch) > 1)
		if failed < 0 {
			for _, u := range batch {
				u.done <- err
			}
			break
		}
		alone = append(alone, batch[failed])
		batch = slices.Delete(batch, failed, failed+1)
	}
	for _, u := range alone {
		_, err := c.runGroup([]*groupUnit{u}, false)
		u.done <- err
	}
}

// runGroup runs units in one transaction. When stopAtFailure is set and a unit
// fails, it rolls back and returns that unit's index; otherwise it returns
// -1 and the outcome shared by every unit: nil when they committed. A unit
// whose caller gave up before it began fails with the context's error.
func (c *committer) runGroup(units []*groupUnit, stopAtFailure bool) (failed int, err error) {
	db := c.db
	// The transaction outlives any one caller's context: a caller that
	// gives up must not roll back the others' work.
	ctx := context.Background()
	dtx, err := db.drv.Begin(ctx)
	if err != nil {
		return -1, fmt.Errorf("store.Transact: begin: %w", err)
	}
	now := db.now().UTC().Truncate(fhir.InstantPrecision)
	for i, u := range units {
		err := u.ctx.Err()
		if err == nil {
			err = (&Tx{db: db, tx: dtx, now: now}).run(u.ctx, u.fn)
		}
		if err != nil {
			_ = dtx.Rollback(ctx)
			if stopAtFailure {
				return i, nil
			}
			return -1, err
		}
	}
	if err := dtx.Commit(ctx); err != nil {
		_ = dtx.Rollback(ctx)
		return -1, fmt.Errorf("store.Transact: commit: %w", err)
	}
	return -1, nil
}
