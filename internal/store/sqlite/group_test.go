package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

// TestGroupCommitIsolatesUnits runs many units of work at once, so that the
// committer batches them into shared transactions, and half of them fail
// after writing: every failing unit must leave nothing behind and every
// other unit must be stored whole.
func TestGroupCommitIsolatesUnits(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "group.db"))
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	errFail := errors.New("this unit fails on purpose")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
				for j := range 2 { // two resources per unit: all or nothing
					id := fmt.Sprintf("u%d-%d", i, j)
					body := []byte(`{"resourceType":"Basic","id":"` + id + `"}`)
					if err := tx.Put(ctx, &store.Version{Type: "Basic", ID: id, VersionID: 1, Method: "PUT", Body: body}); err != nil {
						return err
					}
				}
				if i%2 == 0 {
					return errFail
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i := range n {
		wantErr := i%2 == 0
		if gotErr := errs[i] != nil; gotErr != wantErr || (wantErr && !errors.Is(errs[i], errFail)) {
			t.Fatalf("unit %d: err = %v, want failure %v", i, errs[i], wantErr)
		}
		for j := range 2 {
			_, err := db.Read(ctx, "Basic", fmt.Sprintf("u%d-%d", i, j))
			if wantErr && !fhir.IsCode(err, fhir.NotFound) {
				t.Errorf("failed unit %d left Basic/u%d-%d behind (err %v)", i, i, j, err)
			}
			if !wantErr && err != nil {
				t.Errorf("unit %d: Basic/u%d-%d: %v", i, i, j, err)
			}
		}
	}
	// A unit whose caller gave up before it ran writes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := db.Transact(cctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Basic", ID: "late", VersionID: 1, Method: "PUT", Body: []byte(`{"resourceType":"Basic","id":"late"}`)})
	})
	if err == nil {
		t.Error("a unit with a cancelled context succeeded")
	}
	if _, err := db.Read(ctx, "Basic", "late"); !fhir.IsCode(err, fhir.NotFound) {
		t.Errorf("cancelled unit left Basic/late behind (err %v)", err)
	}
}
