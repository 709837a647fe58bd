package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smartfhir/internal/store"
	"smartfhir/internal/store/sqlite"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, sqlstore.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db := open(t, filepath.Join(t.TempDir(), "db", "smartfhir.db"))
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}

// TestConcurrentMigrate opens the same file several times, as several
// processes would, and migrates from all of them at once.
func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	var dbs []*sqlstore.DB
	for range 4 {
		db := open(t, path)
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dbs))
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	// Again: nothing left to do, no error.
	if err := dbs[0].Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("listing migrations: %v (%d files)", err, len(files))
	}
	var n int64
	if err := dbs[1].QueryRow(context.Background(), "SELECT COUNT(*) FROM schema_migrations", nil, &n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	if n != int64(len(files)) {
		t.Fatalf("schema_migrations rows: got %d, want %d, one per migration", n, len(files))
	}
}

func TestOpenRejectsUnusablePath(t *testing.T) {
	for _, path := range []string{"", "a?b.db"} {
		if db, err := sqlite.Open(context.Background(), path, sqlstore.Config{}); err == nil {
			db.Close()
			t.Errorf("Open(%q): got no error, want one", path)
		}
	}
}

func migrated(b *testing.B) *sqlstore.DB {
	db := open(b, filepath.Join(b.TempDir(), "bench.db"))
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		b.Fatalf("Migrate: %v", err)
	}
	return db
}

func BenchmarkRead(b *testing.B) {
	db := migrated(b)
	ctx := context.Background()
	const n = 1000
	body := make([]byte, 2000) // a typical resource
	for i := range body {
		body[i] = 'x'
	}
	err := db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range n {
			if err := tx.Put(ctx, &store.Version{Type: "Patient", ID: fmt.Sprint(i), VersionID: 1, Method: "POST", Body: body}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := db.Read(ctx, "Patient", ids[i%n]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkPut(b *testing.B) {
	db := migrated(b)
	ctx := context.Background()
	body := make([]byte, 2000)
	for i := range body {
		body[i] = 'x'
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprint(i)
		err := db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, &store.Version{Type: "Patient", ID: id, VersionID: 1, Method: "POST", Body: body})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestScanOneKeepsBytes guards what QueryRow relies on to skip a copy: a
// []byte it returned stays intact through later statements on the same
// connections (the driver never reuses the slices it hands out).
func TestScanOneKeepsBytes(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "smartfhir.db"))
	defer db.Close()
	var kept [][]byte
	var copies [][]byte
	for range 200 {
		var b []byte
		if err := db.QueryRow(ctx, "SELECT randomblob(64)", nil, &b); err != nil {
			t.Fatal(err)
		}
		if len(b) != 64 {
			t.Fatalf("got %d bytes, want 64", len(b))
		}
		kept = append(kept, b)
		copies = append(copies, bytes.Clone(b))
	}
	for i := range kept {
		if !bytes.Equal(kept[i], copies[i]) {
			t.Fatalf("value %d changed after later statements", i)
		}
	}
	var s string
	var n int64
	var b []byte
	if err := db.QueryRow(ctx, "SELECT 'x', 7, NULL", nil, &s, &n, &b); err != nil || s != "x" || n != 7 || b != nil {
		t.Fatalf("mixed row: %q %d %v, %v", s, n, b, err)
	}
	if err := db.QueryRow(ctx, "SELECT 1 WHERE 0", nil, &n); !errors.Is(err, sqlstore.ErrNoRows) {
		t.Fatalf("no row: %v, want ErrNoRows", err)
	}
}

// TestBulkLoadCheckpointsLess: a store opened for a bulk load lets the
// write-ahead log grow ten times larger before a commit copies it back.
func TestBulkLoadCheckpointsLess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bulk.db")
	for _, tt := range []struct {
		bulk bool
		want int
	}{{false, 10000}, {true, 100000}} {
		db, err := sqlite.Open(context.Background(), path, sqlstore.Config{BulkLoad: tt.bulk})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		err = db.TransactSQL(context.Background(), func(ctx context.Context, tx *sqlstore.Tx) error {
			return tx.QueryRow(ctx, "PRAGMA wal_autocheckpoint", nil, &got)
		})
		if err != nil || got != tt.want {
			t.Errorf("BulkLoad %v: wal_autocheckpoint = %d, %v; want %d", tt.bulk, got, err, tt.want)
		}
		if err := db.Close(); err != nil {
			t.Errorf("BulkLoad %v: Close: %v", tt.bulk, err)
		}
	}
}

// TestRefreshStatistics: the server's periodic refresh analyzes a database
// that has never been analyzed, and after Analyze leaves the statistics of
// tables that did not change as they are.
func TestRefreshStatistics(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "smartfhir.db"))
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	err := db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range 200 {
			if err := tx.Put(ctx, &store.Version{Type: "Basic", ID: fmt.Sprint(i), VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Basic"}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stat := func() string {
		t.Helper()
		var s string
		// One row per index of the table; its first number counts the rows.
		if err := db.QueryRow(ctx, "SELECT COALESCE((SELECT stat FROM sqlite_stat1 WHERE tbl = 'resources' ORDER BY idx LIMIT 1), '')", nil, &s); err != nil {
			t.Fatalf("sqlite_stat1: %v", err)
		}
		if f := strings.Fields(s); len(f) > 0 {
			return f[0]
		}
		return ""
	}
	if err := db.RefreshStatistics(ctx); err != nil {
		t.Fatalf("RefreshStatistics: %v", err)
	}
	if got := stat(); got != "200" {
		t.Fatalf("resources after the first refresh: stat %q, want 200", got)
	}
	if err := db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Basic", ID: "one-more", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Basic"}`)})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.RefreshStatistics(ctx); err != nil {
		t.Fatalf("RefreshStatistics: %v", err)
	}
	if got := stat(); got != "200" {
		t.Fatalf("resources after one more row: stat %q, want the 200 of before (too small a change to analyze again)", got)
	}
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stat(); got != "201" {
		t.Fatalf("resources after Analyze: stat %q, want 201", got)
	}
}

// A database whose audit log file was deleted, or copied without it, does
// not open: a server on it would wait for every audit write. With the file
// back it opens again.
func TestOpenRefusesMissingAuditLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smartfhir.db")
	openMigrated(t, path, sqlstore.Config{}).Close()
	auditFile := sqlite.AuditPath(path)
	saved := auditFile + ".saved"
	if err := os.Rename(auditFile, saved); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the failed open leaves an empty file, which fails too
		_, err := sqlite.Open(ctx, path, sqlstore.Config{})
		if err == nil || !strings.Contains(err.Error(), "audit log "+auditFile+" has none of its tables") {
			t.Fatalf("Open without the audit log: %v", err)
		}
	}
	if err := os.Rename(saved, auditFile); err != nil {
		t.Fatal(err)
	}
	openMigrated(t, path, sqlstore.Config{}).Close()
}
