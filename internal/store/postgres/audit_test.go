package postgres_test

import (
	"context"
	"os"
	"testing"

	"smartfhir/internal/audit"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

// openAudit opens the database at url with the term index in the
// segments storetest's audit suites expect, migrated.
func openAudit(t *testing.T, url string) *sqlstore.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, sqlstore.Config{AuditSegmentEvents: storetest.AuditSegment})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestAuditConformance(t *testing.T) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set", envURL)
	}
	storetest.RunAudit(t, func(t *testing.T) (audit.Store, storetest.Execer) {
		db := openAudit(t, schemaURL(t))
		return db.Audit(), db
	})
}

func TestAuditSegments(t *testing.T) {
	url := schemaURL(t)
	storetest.RunAuditSegments(t, func(t *testing.T) (audit.Store, storetest.Querier) {
		db := openAudit(t, url)
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
