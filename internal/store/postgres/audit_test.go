package postgres_test

import (
	"context"
	"os"
	"testing"

	"smartfhir/internal/audit"
	"smartfhir/internal/store/storetest"
)

func TestAuditConformance(t *testing.T) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set", envURL)
	}
	storetest.RunAudit(t, func(t *testing.T) (audit.Store, storetest.Execer) {
		db := open(t, schemaURL(t))
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db.Audit(), db
	})
}

func TestAuditUpgrade(t *testing.T) {
	db := open(t, schemaURL(t))
	t.Cleanup(func() { db.Close() })
	storetest.RunAuditUpgrade(t, db, db.Audit(), "SELECT nextval('audit_seq')")
}

func TestAuditBlocksUpgrade(t *testing.T) {
	db := open(t, schemaURL(t))
	t.Cleanup(func() { db.Close() })
	storetest.RunAuditBlocksUpgrade(t, db, db.Audit(), "SELECT setval('audit_seq', ?)")
}
