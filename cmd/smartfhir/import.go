package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"strings"

	"smartfhir/internal/fhir/spec"
	"smartfhir/internal/importer"
	"smartfhir/internal/rest"
	"smartfhir/internal/search"
)

// runImport is `smartfhir import [flags] PATH…`: it loads Bundles and
// NDJSON files (or folders of them) into the database, through the same
// Bundle processor as POST [base], so what it writes is validated, indexed
// and visible to a running server at once.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", stderr)
	var f dbFlags
	f.register(fs)
	baseURL := fs.String("base-url", "http://localhost:8080", "public base URL of the server the data is for (absolute references to it are local)")
	skipInvalid := fs.Bool("skip-invalid", false, "load a transaction Bundle without its invalid entries (reported) instead of failing it as a whole")
	workers := fs.Int("workers", 0, "files read and prepared at once, twice as many and one more loading at once (0: one per core, one fewer on SQLite)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: smartfhir import [flags] PATH…\n\nPATH is a .json or .ndjson file (optionally .gz or .bz2) or a folder of them.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("import: name at least one file or folder to load")
	}
	if *workers < 0 {
		return fmt.Errorf("--workers %d: want 1 or more, or 0 for the default", *workers)
	}
	if u, err := url.Parse(*baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--base-url %q: want an absolute http(s) URL", *baseURL)
	}
	kind, _, err := f.resolve()
	if err != nil {
		return err
	}
	if *workers == 0 {
		*workers = defaultWorkers(kind, runtime.GOMAXPROCS(0))
	}
	files, err := importer.Find(fs.Args())
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	fhirBase := strings.TrimSuffix(*baseURL, "/") + "/fhir"
	reg, err := search.NewRegistry(search.Config{Base: fhirBase})
	if err != nil {
		return fmt.Errorf("import: compiling the search parameters: %w", err)
	}
	f.search, f.bulk = reg, true
	db, err := f.open(ctx)
	if err != nil {
		return err
	}
	// Bring the indexes of what is already stored up to this parameter
	// set and record it, as serve does at start; otherwise the next start
	// would re-index everything this import wrote.
	if _, err := db.Reindex(ctx, false); err != nil {
		db.Close()
		return fmt.Errorf("import: re-indexing for search: %w", err)
	}
	defer db.Close()
	api := rest.New(rest.Config{
		Base:          fhirBase,
		Store:         db,
		Search:        reg,
		Validator:     validator{},
		ResourceTypes: spec.ResourceTypes(),
		NewID:         newID,
	})
	sum, err := importer.Load(ctx, importer.Config{
		Bundles:     api.Bundles(),
		Workers:     *workers,
		SkipInvalid: *skipInvalid,
		Progress:    stderr,
		Terminal:    isTerminal(stderr),
	}, files)
	printSummary(stdout, sum)
	if err != nil {
		return fmt.Errorf("import interrupted: %w", err)
	}
	// A bulk load changes the shape of the data the search plans rest on.
	if err := db.AfterBulkLoad(ctx); err != nil {
		return fmt.Errorf("refreshing planner statistics after the import: %w", err)
	}
	if n := len(sum.Problems); n > 0 {
		return fmt.Errorf("import: %d problem(s) in %d file(s); see above", n, sum.FilesFailed)
	}
	return nil
}

// defaultWorkers is how many files an import reads and prepares at once
// on cores cores: one per core, but on SQLite one fewer, since everything
// the import writes goes through its single writer, which then has a core
// of its own instead of waiting for one (synthea-120 on two cores:
// 3,446-4,055 resources/s with one worker, 3,017-3,688 with two; on
// PostgreSQL, whose server writes, 2,947-3,009 with one, 3,202-3,295
// with two).
func defaultWorkers(kind string, cores int) int {
	if kind == "sqlite" {
		return max(1, cores-1)
	}
	return max(1, cores)
}

func printSummary(w io.Writer, s *importer.Summary) {
	for _, p := range s.Problems {
		fmt.Fprintln(w, "error:", p)
	}
	if s.Retried > 0 {
		fmt.Fprintf(w, "%d file(s) tried again after the others: their conditional references had matched no resource\n", s.Retried)
	}
	fmt.Fprintf(w, "%d files: %d resources loaded (%d created, %d updated, %d already present, %d deleted), %d failed, %d errors, in %s (%.0f resources/s)\n",
		s.Files, s.Loaded(), s.Created, s.Updated, s.Unchanged, s.Deleted, s.Failed, len(s.Problems),
		s.Elapsed.Round(10_000_000), s.Rate())
}

// isTerminal reports whether w is a character device (a terminal), where
// the progress line is redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
