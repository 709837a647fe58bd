package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
	"smartfhir/internal/store/sqlite"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

func openSearch(t *testing.T, path string, reg *search.Registry) *sqlstore.DB {
	t.Helper()
	return openMigrated(t, path, sqlstore.Config{Search: reg})
}

// openMigrated opens the database at path with cfg and migrates it.
func openMigrated(t testing.TB, path string, cfg sqlstore.Config) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestSearchConformance(t *testing.T) {
	storetest.RunSearch(t, func(t *testing.T, reg *search.Registry) store.Store {
		return openSearch(t, filepath.Join(t.TempDir(), "s.db"), reg)
	})
}

// TestReindex runs storetest.RunReindex on one file, opened first without
// a registry and then with one.
func TestReindex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rc.db")
	storetest.RunReindex(t, func(reg *search.Registry) storetest.Reindexer {
		db := openSearch(t, path, reg)
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestIndexRowsSurviveMigrations runs storetest.RunIndexUpgrade and checks
// what migrations 0010 and 0011 changed in SQLite's schema.
func TestIndexRowsSurviveMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fk.db")
	var opened []*sqlstore.DB
	defer func() {
		for _, db := range opened {
			db.Close()
		}
	}()
	db := storetest.RunIndexUpgrade(t, func(reg *search.Registry) storetest.Upgrader {
		db, err := sqlite.Open(ctx, path, sqlstore.Config{Search: reg})
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, db)
		return db
	}).(*sqlstore.DB)
	var fks int
	err := db.TransactSQL(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM pragma_foreign_key_list('search_token')", nil, &fks)
	})
	if err != nil || fks != 0 {
		t.Errorf("search_token has %d foreign keys (%v), want none", fks, err)
	}
	// Migration 0011: every index table is its own rid index (and so are
	// the tables by patient of 0014).
	var clustered int
	err = db.TransactSQL(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'search\_%' ESCAPE '\'
AND name != 'search_state' AND sql LIKE '%WITHOUT ROWID'`, nil, &clustered)
	})
	if err != nil || clustered != 10 {
		t.Errorf("%d index tables WITHOUT ROWID (%v), want 10", clustered, err)
	}
}
