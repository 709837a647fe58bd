package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"smartfhir/internal/store"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

const envURL = "SMARTFHIR_TEST_POSTGRES"

// schemaURL creates a schema of its own for the test, dropped at cleanup,
// and returns the database URL with search_path set to it, so that test
// packages running in parallel never see each other's tables.
func schemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(envURL)
	if base == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL store tests", envURL)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", envURL, err)
	}
	defer conn.Close(ctx)
	schema := "storetest_" + rand.Text()[:12]
	schema = sanitize(schema)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect for cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", envURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// sanitize keeps the schema name a plain lower-case identifier.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

func open(t testing.TB, url string) *sqlstore.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, sqlstore.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL to run the conformance suite on PostgreSQL", envURL)
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		db := open(t, schemaURL(t))
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}

// TestConcurrentMigrate migrates one schema from several pools at once, as
// replicas starting together would.
func TestConcurrentMigrate(t *testing.T) {
	u := schemaURL(t)
	var dbs []*sqlstore.DB
	for range 4 {
		db := open(t, u)
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

func TestOpenDoesNotEchoTheURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:s3cret@%zz/db", sqlstore.Config{})
	if err == nil {
		t.Fatal("Open of a malformed URL: got no error")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Fatalf("Open error %q shows the password", got)
	}
}

func migrated(b *testing.B) *sqlstore.DB {
	db := open(b, schemaURL(b))
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
