package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
	"smartfhir/internal/store/postgres"
	"smartfhir/internal/store/sqlstore"
	"smartfhir/internal/store/storetest"
)

func TestSearchConformance(t *testing.T) { runSearchConformance(t, 0) }

// The suite once more, the bodies of search pages kept in memory
// (Config.ReadCacheBytes; PostgreSQL has no read cache for reads by id).
func TestSearchConformanceWithPageCache(t *testing.T) { runSearchConformance(t, 1<<20) }

func runSearchConformance(t *testing.T, cacheBytes int) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL to run the search suite on PostgreSQL", envURL)
	}
	storetest.RunSearch(t, func(t *testing.T, reg *search.Registry) store.Store {
		db, err := postgres.Open(context.Background(), schemaURL(t), sqlstore.Config{Search: reg, ReadCacheBytes: cacheBytes})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	})
}

// TestIndexRowsSurviveMigrations runs storetest.RunIndexUpgrade on
// PostgreSQL.
func TestIndexRowsSurviveMigrations(t *testing.T) {
	u := schemaURL(t)
	storetest.RunIndexUpgrade(t, func(reg *search.Registry) storetest.Upgrader {
		db, err := postgres.Open(context.Background(), u, sqlstore.Config{Search: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestSearchPlans checks where searches are planned. A walked page (a
// reference to one resource drives it) stays a prepared statement of the
// main pool, which PostgreSQL switches to a generic plan after five runs;
// a collected page (one condition with few rows) runs on the pool of
// generic plans; any other search runs on the per-run pool. Neither of
// the last two becomes a prepared statement of the main pool's sessions.
func TestSearchPlans(t *testing.T) {
	if os.Getenv(envURL) == "" {
		t.Skipf("%s is not set; set it to a PostgreSQL URL to run the PostgreSQL store tests", envURL)
	}
	ctx := context.Background()
	reg, err := search.NewRegistry(search.Config{Base: storetest.SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	// One connection per pool: the statements below see the session the
	// searches ran on.
	app := fmt.Sprintf("plans-%d", time.Now().UnixNano())
	db, err := postgres.Open(ctx, schemaURL(t)+"&pool_max_conns=1&application_name="+app, sqlstore.Config{Search: reg})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	err = db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := range 20 {
			body := fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"c%d"}]},"subject":{"reference":"Patient/p%d"}}`, i, i%3, i%4)
			if err := tx.Put(ctx, &store.Version{Type: "Observation", ID: fmt.Sprintf("o%d", i), VersionID: 1, Method: "PUT", Body: []byte(body)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	searchN := func(query string, want int) {
		params, _ := url.ParseQuery(query)
		q, _, err := reg.Parse("Observation", params, true)
		if err != nil {
			t.Fatal(err)
		}
		q.Count = 10
		for range 8 {
			res, err := db.Search(ctx, q)
			if err != nil {
				t.Fatalf("Observation?%s: %v", query, err)
			}
			if len(res.Matches) != want {
				t.Fatalf("Observation?%s: %d matches, want %d", query, len(res.Matches), want)
			}
		}
	}
	searchN("subject=Patient/p1&code=c1", 2)      // o1, o13: walked, code probed
	searchN("patient=p1&code=c1&status=final", 2) // walked by patient and code, status probed
	searchN("code=c2&status=final", 6)            // o2, o5, …, o17: driven by a token, planned per run
	searchN("code=c2", 6)                         // the same, collected
	// The session of the pool of generic plans ran the collected page
	// last.
	var last string
	err = db.QueryRow(ctx, "SELECT query FROM pg_stat_activity WHERE application_name = $1", []any{app + "/generic"}, &last)
	if err != nil {
		t.Fatalf("the pool of generic plans: %v", err)
	}
	if !strings.HasPrefix(last, "WITH m AS MATERIALIZED (SELECT") || !strings.Contains(last, "FROM search_token") {
		t.Errorf("the last statement of the pool of generic plans is not the collected page: %s", last)
	}

	rows, err := db.Query(ctx, "SELECT statement, generic_plans FROM pg_prepared_statements")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	walked := map[string]bool{}
	for rows.Next() {
		var stmt string
		var generic int64
		if err := rows.Scan(&stmt, &generic); err != nil {
			t.Fatal(err)
		}
		walk := ""
		for _, index := range []string{"search_reference", "search_token_patient"} {
			if strings.Contains(stmt, "FROM "+index+" d JOIN resources r") {
				walk = index
			}
		}
		switch {
		case walk != "":
			walked[walk] = true
			if generic == 0 {
				t.Errorf("the walked page never ran on a generic plan: %s", stmt)
			}
			// Its probes are fenced: on synthea-120 the generic plan
			// of an unfenced one started from category=laboratory's
			// 29,206 rows instead of the patient's 136 (365 ms, not 4).
			if !strings.Contains(stmt, "OFFSET 0)") {
				t.Errorf("the walked page's probe is not fenced (Dialect.ProbeFence): %s", stmt)
			}
		case strings.Contains(stmt, "FROM resources r WHERE r.type = $1 AND r.deleted = $2"):
			t.Errorf("a search driven by a token is a prepared statement of the main pool: %s", stmt)
		case strings.Contains(stmt, "WITH m AS MATERIALIZED"):
			t.Errorf("a collected page is a prepared statement of the main pool: %s", stmt)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, index := range []string{"search_reference", "search_token_patient"} {
		if !walked[index] {
			t.Errorf("no page walking %s is a prepared statement of the main pool", index)
		}
	}
}
