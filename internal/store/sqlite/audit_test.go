package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"smartfhir/internal/audit"
	"smartfhir/internal/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) (audit.Store, storetest.Execer) {
		db := open(t, filepath.Join(t.TempDir(), "audit.db"))
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db.Audit(), db
	})
}
