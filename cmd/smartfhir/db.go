package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"smartfhir/internal/search"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlite"
	"smartfhir/internal/store/sqlstore"
)

// dbFlags are the flags that choose and locate the database, shared by every
// command that opens it.
type dbFlags struct {
	DB      string
	DataDir string
	// now is the clock handed to the store; tests may replace it.
	now func() time.Time
	// search, when set, is the registry the store indexes with.
	search *search.Registry
	// bulk opens the store for a bulk load (sqlstore.Config.BulkLoad).
	bulk bool
	// readCache is sqlstore.Config.ReadCacheBytes (serve's --read-cache-mb).
	readCache int
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.DB, "db", "", "database: sqlite:PATH or a postgres:// URL (default sqlite under --data-dir)")
	fs.StringVar(&f.DataDir, "data-dir", "./smartfhir-data", "directory for the embedded database and export files")
}

// describe names the database for log lines without any password.
func (f *dbFlags) describe() string {
	kind, loc, err := f.resolve()
	if err != nil {
		return "invalid"
	}
	if kind == "postgres" {
		return "postgres"
	}
	return "sqlite:" + loc
}

func (f *dbFlags) resolve() (kind, location string, err error) {
	switch db := f.DB; {
	case db == "":
		return "sqlite", filepath.Join(f.DataDir, "smartfhir.db"), nil
	case strings.HasPrefix(db, "sqlite:"):
		p := strings.TrimPrefix(db, "sqlite:")
		if p == "" {
			return "", "", fmt.Errorf("--db sqlite: needs a path, e.g. sqlite:./data/smartfhir.db")
		}
		return "sqlite", p, nil
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", db, nil
	default:
		return "", "", fmt.Errorf("--db %q: want sqlite:PATH or a postgres:// URL", db)
	}
}

// open opens the chosen backend and applies pending migrations.
func (f *dbFlags) open(ctx context.Context) (*sqlstore.DB, error) {
	kind, loc, err := f.resolve()
	if err != nil {
		return nil, err
	}
	cfg := sqlstore.Config{Now: f.now, Search: f.search, BulkLoad: f.bulk, ReadCacheBytes: f.readCache}
	var db *sqlstore.DB
	if kind == "postgres" {
		db, err = postgres.Open(ctx, loc, cfg)
	} else {
		db, err = sqlite.Open(ctx, loc, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the %s database: %w", kind, err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating the %s database: %w", kind, err)
	}
	return db, nil
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", stderr)
	var f dbFlags
	f.register(fs)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "%s: schema up to date\n", f.describe())
	return nil
}
