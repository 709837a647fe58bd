package sqlite_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
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

// TestReindex writes resources without a registry, as a database from
// before the search migration holds them, and checks that Reindex makes
// them searchable, once.
func TestReindex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	plain := open(t, path)
	if err := plain.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	err := plain.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Patient", ID: "a", VersionID: 1, Method: "POST",
			Body: []byte(`{"resourceType":"Patient","id":"a","gender":"female"}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	plain.Close()
	reg, err := search.NewRegistry(search.Config{Base: storetest.SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	db := openSearch(t, path, reg)
	defer db.Close()
	q, _, err := reg.Parse("Patient", map[string][]string{"gender": {"female"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 10
	res, err := db.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 0 {
		t.Fatalf("before Reindex: %d matches, want 0 (nothing indexed yet)", len(res.Matches))
	}
	n, err := db.Reindex(ctx, false)
	if err != nil || n != 1 {
		t.Fatalf("Reindex = %d, %v; want 1, nil", n, err)
	}
	if res, err = db.Search(ctx, q); err != nil || len(res.Matches) != 1 {
		t.Fatalf("after Reindex: %v, %v; want one match", res, err)
	}
	if n, err := db.Reindex(ctx, false); err != nil || n != 0 {
		t.Errorf("second Reindex = %d, %v; want 0, nil (fingerprint unchanged)", n, err)
	}
}

// TestIndexRowsSurviveMigrations writes index rows under migration 0009's
// tables and checks that migrations 0010 (no foreign keys) and 0011 (tables
// clustered by rid), which rebuild them, keep them searchable.
func TestIndexRowsSurviveMigrations(t *testing.T) {
	ctx := context.Background()
	reg, err := search.NewRegistry(search.Config{Base: storetest.SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fk.db"), sqlstore.Config{Search: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MigrateTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	err = db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, b := range []string{
			`{"resourceType":"Patient","id":"p","gender":"female","name":[{"family":"Quinn"}]}`,
			`{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2020-01-02","valueQuantity":{"value":170,"system":"http://unitsofmeasure.org","code":"cm"}}`,
		} {
			typ, id, _ := strings.Cut(strings.TrimPrefix(b, `{"resourceType":"`), `","id":"`)
			id, _, _ = strings.Cut(id, `"`)
			if err := tx.Put(ctx, &store.Version{Type: typ, ID: id, VersionID: 1, Method: "PUT", Body: []byte(b)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ typ, query, want string }{
		{"Patient", "gender=female&name=quin", "p"},
		{"Observation", "patient=p&code=http://loinc.org|8302-2&date=2020&value-quantity=170||cm", "o"},
		{"Observation", "code-value-quantity=8302-2$gt100", "o"},
	} {
		vals, _ := url.ParseQuery(tt.query)
		q, _, err := reg.Parse(tt.typ, vals, true)
		if err != nil {
			t.Fatal(err)
		}
		q.Count = 10
		res, err := db.Search(ctx, q)
		if err != nil || len(res.Matches) != 1 || res.Matches[0].ID != tt.want {
			t.Errorf("%s?%s after the migration: %v, %v; want %s", tt.typ, tt.query, res, err, tt.want)
		}
	}
	var fks int
	err = db.TransactSQL(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM pragma_foreign_key_list('search_token')", nil, &fks)
	})
	if err != nil || fks != 0 {
		t.Errorf("search_token has %d foreign keys (%v), want none", fks, err)
	}
	// Migration 0011: every index table is its own rid index.
	var clustered int
	err = db.TransactSQL(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'search\_%' ESCAPE '\'
AND name != 'search_state' AND sql LIKE '%WITHOUT ROWID'`, nil, &clustered)
	})
	if err != nil || clustered != 8 {
		t.Errorf("%d index tables WITHOUT ROWID (%v), want 8", clustered, err)
	}
}
