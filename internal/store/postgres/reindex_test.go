package postgres_test

import (
	"context"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

// TestReindex runs storetest.RunReindex on one schema, opened first
// without a registry and then with one.
func TestReindex(t *testing.T) {
	u := schemaURL(t)
	storetest.RunReindex(t, func(reg *search.Registry) storetest.Reindexer {
		db, err := postgres.Open(context.Background(), u, sqlstore.Config{Search: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}
