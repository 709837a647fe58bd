package postgres_test

import (
	"context"
	"os"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

func TestSearchConformance(t *testing.T) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL to run the search suite on PostgreSQL", envURL)
	}
	storetest.RunSearch(t, func(t *testing.T, reg *search.Registry) store.Store {
		db, err := postgres.Open(context.Background(), schemaURL(t), sqlstore.Config{Search: reg})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}
