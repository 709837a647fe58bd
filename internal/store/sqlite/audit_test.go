package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"smartfhir/internal/audit"
	"smartfhir/internal/store/sqlite"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

// openAudit opens the database at path, migrated, with the term index in
// the segments storetest's audit suites expect.
func openAudit(t *testing.T, path string) *sqlstore.DB {
	t.Helper()
	db := openMigrated(t, path, sqlstore.Config{AuditSegmentEvents: storetest.AuditSegment})
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) (audit.Store, storetest.Execer) {
		db := openAudit(t, filepath.Join(t.TempDir(), "audit.db"))
		return db.Audit(), db
	})
}

func TestAuditSegments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	storetest.RunAuditSegments(t, func(t *testing.T) (audit.Store, storetest.Querier) {
		db := openAudit(t, path)
		return db.Audit(), db
	})
}

// BenchmarkAuditAppend is the database's cost per audit event, written in
// batches of 1,000 as the server's audit log does.
func BenchmarkAuditAppend(b *testing.B) {
	db := migrated(b)
	batch := make([]audit.Event, 1000)
	for i := range batch {
		batch[i] = audit.Event{Time: time.Now(), Interaction: "read", Type: "Patient", Resources: []string{"Patient/p" + strconv.Itoa(i%100)},
			Patients: []string{"p" + strconv.Itoa(i%100)}, Status: 200, ClientID: "client-abc", Username: "pat", FHIRUser: "Patient/p1",
			Source: "127.0.0.1", RequestID: "0123456789abcdef"}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		if err := db.Audit().Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAuditUpgrade also checks that the log left the database file for
// its own.
func TestAuditUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smartfhir.db")
	db := open(t, path)
	t.Cleanup(func() { db.Close() })
	storetest.RunAuditUpgrade(t, db, db.Audit(), "")
	var n int64
	if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM main.sqlite_schema WHERE name LIKE 'audit%'", nil, &n); err != nil || n != 0 {
		t.Fatalf("audit tables left in the database file: %d, %v", n, err)
	}
	if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM audit.audit_blocks", nil, &n); err != nil || n != 2 {
		t.Fatalf("audit.audit_blocks: %d rows, %v; want 2 (the old events, the new one)", n, err)
	}
	if _, err := os.Stat(sqlite.AuditPath(path)); err != nil {
		t.Fatalf("the audit log's file: %v", err)
	}
	if got := sqlite.AuditPath("/data/smartfhir.db"); got != "/data/smartfhir-audit.db" {
		t.Errorf("AuditPath = %q", got)
	}
}

func TestAuditBlocksUpgrade(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "smartfhir.db"))
	t.Cleanup(func() { db.Close() })
	storetest.RunAuditBlocksUpgrade(t, db, db.Audit(), "")
}

// BenchmarkAuditAppendTwoWriters is BenchmarkAuditAppendManyPatients'
// batches written by two handles on one database in turns, as two
// replicas or a server and the CLI do: each handle reads the other's
// batches back to keep the terms of the events after the last segment.
func BenchmarkAuditAppendTwoWriters(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	var dbs [2]*sqlstore.DB
	for i := range dbs {
		dbs[i] = open(b, path)
		b.Cleanup(func() { dbs[i].Close() })
		if err := dbs[i].Migrate(context.Background()); err != nil {
			b.Fatalf("Migrate: %v", err)
		}
	}
	batch := make([]audit.Event, 1000)
	fill := func(round int) { manyPatients(batch, round) }
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		fill(i)
		if err := dbs[i/len(batch)%2].Audit().Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// manyPatients fills batch with the events of searches that each name ten
// of 1,000 patients, a different ten in each round.
func manyPatients(batch []audit.Event, round int) {
	for i := range batch {
		pats := make([]string, 10)
		for k := range pats {
			pats[k] = "patient-" + strconv.Itoa((round*7919+i*31+k*101)%1000)
		}
		batch[i] = audit.Event{Time: time.Now(), Interaction: "search-type", Type: "Patient", Query: "name=abc",
			Patients: pats, Status: 200, ClientID: "client-abc", Source: "127.0.0.1", RequestID: "0123456789abcdef"}
	}
}

// BenchmarkAuditAppendManyPatients is the cost per event of searches over
// many patients: each event names ten of 1,000 patients, so each batch
// adds about a thousand rows across the term index, which a log already
// holding 300,000 such events has made larger than a small page cache.
func BenchmarkAuditAppendManyPatients(b *testing.B) {
	db := migrated(b)
	batch := make([]audit.Event, 1000)
	fill := func(round int) { manyPatients(batch, round) }
	for round := range 300 {
		fill(round)
		if err := db.Audit().Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		fill(i)
		if err := db.Audit().Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
