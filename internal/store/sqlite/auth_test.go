package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"smartfhir/internal/smart"
	"smartfhir/internal/store/storetest"
)

func TestAuthConformance(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) smart.Store {
		db := open(t, filepath.Join(t.TempDir(), "auth.db"))
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db.Auth()
	})
}
