package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"smartfhir/internal/smart"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

// authDB opens a fresh schema of the database named by
// SMARTFHIR_TEST_POSTGRES, migrated, and drops it when the test ends.
func authDB(t *testing.T) *sqlstore.DB {
	t.Helper()
	dsn := os.Getenv("SMARTFHIR_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("SMARTFHIR_TEST_POSTGRES is not set")
	}
	ctx := context.Background()
	admin, err := postgres.Open(ctx, dsn, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "auth_test_" + hex.EncodeToString(b)
	exec := func(q string) {
		err := admin.TransactSQL(ctx, func(ctx context.Context, tx *sqlstore.Tx) error {
			_, err := tx.Exec(ctx, q)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String(), sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestAuthConformance(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) smart.Store { return authDB(t).Auth() })
}
