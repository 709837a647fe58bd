package rest_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// memStore is a small in-memory store.Store for the REST tests. Units of
// work run one at a time (as on SQLite); their writes become visible at
// once on success and not at all on failure.
type memStore struct {
	writer sync.Mutex // serializes units of work
	mu     sync.RWMutex
	all    []*store.Version // in commit order; seq = index + 1
	latest map[string]int   // type/id → index in all
	last   time.Time
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{latest: map[string]int{}} }

func key(typ, id string) string { return typ + "/" + id }

func clone(v *store.Version) *store.Version { c := *v; return &c }

func found(v *store.Version) (*store.Version, error) {
	if v.Deleted {
		return clone(v), fhir.Errorf(fhir.Gone, "%s/%s was deleted", v.Type, v.ID)
	}
	return clone(v), nil
}

func (s *memStore) Read(ctx context.Context, typ, id string) (*store.Version, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.latest[key(typ, id)]
	if !ok {
		return nil, fhir.Errorf(fhir.NotFound, "%s/%s not found", typ, id)
	}
	return found(s.all[i])
}

func (s *memStore) VRead(ctx context.Context, typ, id string, vid int64) (*store.Version, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.all {
		if v.Type == typ && v.ID == id && v.VersionID == vid {
			return found(v)
		}
	}
	return nil, fhir.Errorf(fhir.NotFound, "%s/%s/_history/%d not found", typ, id, vid)
}

func (s *memStore) History(ctx context.Context, q store.HistoryQuery) (*store.HistoryPage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	before := len(s.all) + 1
	if q.Cursor != "" {
		n, err := strconv.Atoi(q.Cursor)
		if err != nil || n < 1 {
			return nil, fhir.Errorf(fhir.Invalid, "bad cursor")
		}
		before = n
	}
	page := &store.HistoryPage{}
	for i := len(s.all) - 1; i >= 0; i-- {
		v := s.all[i]
		if (q.Type != "" && v.Type != q.Type) || (q.ID != "" && v.ID != q.ID) {
			continue
		}
		if !q.Since.IsZero() && v.LastUpdated.Before(q.Since) {
			continue
		}
		if !q.At.IsZero() && !s.currentDuring(i, q.At, q.AtEnd) {
			continue
		}
		page.Total++
		if i+1 >= before {
			continue
		}
		if len(page.Versions) == q.Count {
			if page.Next == "" {
				page.Next = strconv.Itoa(i + 2) // continue below the last one taken
			}
			continue
		}
		page.Versions = append(page.Versions, clone(v))
	}
	return page, nil
}

// currentDuring reports whether all[i] was the current version at some
// instant of [at, atEnd).
func (s *memStore) currentDuring(i int, at, atEnd time.Time) bool {
	v := s.all[i]
	if !v.LastUpdated.Before(atEnd) {
		return false
	}
	for _, w := range s.all[i+1:] {
		if w.Type == v.Type && w.ID == v.ID {
			return w.LastUpdated.After(at)
		}
	}
	return true
}

func (s *memStore) Transact(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	s.writer.Lock()
	defer s.writer.Unlock()
	now := time.Now().UTC().Truncate(fhir.InstantPrecision)
	if !now.After(s.last) {
		now = s.last.Add(fhir.InstantPrecision)
	}
	tx := &memTx{s: s, now: now, pending: map[string]*store.Version{}}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = now
	for _, v := range tx.order {
		s.all = append(s.all, v)
		s.latest[key(v.Type, v.ID)] = len(s.all) - 1
	}
	return nil
}

func (s *memStore) Ping(context.Context) error { return nil }
func (s *memStore) Close() error               { return nil }

type memTx struct {
	s       *memStore
	now     time.Time
	pending map[string]*store.Version
	order   []*store.Version
}

func (tx *memTx) Now() time.Time { return tx.now }

func (tx *memTx) Current(ctx context.Context, typ, id string) (*store.Version, error) {
	if v, ok := tx.pending[key(typ, id)]; ok {
		return found(v)
	}
	return tx.s.Read(ctx, typ, id)
}

func (tx *memTx) Put(ctx context.Context, v *store.Version) error {
	var cur int64
	if c, err := tx.Current(ctx, v.Type, v.ID); c != nil {
		cur = c.VersionID
	} else if !fhir.IsCode(err, fhir.NotFound) {
		return err
	}
	if v.VersionID != cur+1 {
		return fhir.Errorf(fhir.Conflict, "%s/%s: version %d is not next after %d", v.Type, v.ID, v.VersionID, cur)
	}
	c := clone(v)
	c.Body = slices.Clone(v.Body)
	tx.pending[key(v.Type, v.ID)] = c
	tx.order = append(tx.order, c)
	return nil
}
