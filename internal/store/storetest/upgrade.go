package storetest

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Upgrader is a database that can be migrated step by step and searched.
type Upgrader interface {
	Migrator
	store.Store
}

// RunIndexUpgrade checks that index rows written by an older release, under
// migration 0009's tables (the resource type and the parameter code in each
// row), stay searchable through the migrations that rebuild those tables:
// 0010 (no foreign keys), 0011 (SQLite: clustered by rid), 0013
// (parameter keys) and 0014 (the tables by patient, filled from them). open
// opens the same empty, unmigrated database each
// time, with reg when it is not nil; the database of the second call is
// returned, migrated, for the backend's own checks.
func RunIndexUpgrade(t *testing.T, open func(reg *search.Registry) Upgrader) Upgrader {
	t.Helper()
	ctx := context.Background()
	reg, err := search.NewRegistry(search.Config{Base: SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	old := open(nil) // that release's store wrote the rows itself, below
	if err := old.MigrateTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		`{"resourceType":"Patient","id":"p","gender":"female","name":[{"family":"Quinn"}]}`,
		`{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2020-01-02","valueQuantity":{"value":170,"system":"http://unitsofmeasure.org","code":"cm"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2021-05-06"}`,
	} {
		typ, id, _ := strings.Cut(strings.TrimPrefix(b, `{"resourceType":"`), `","id":"`)
		id, _, _ = strings.Cut(id, `"`)
		err := old.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, &store.Version{Type: typ, ID: id, VersionID: 1, Method: "PUT", Body: []byte(b)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeOldIndexRows(ctx, old, reg, typ, id, b); err != nil {
			t.Fatalf("index rows of %s/%s: %v", typ, id, err)
		}
	}
	db := open(reg)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	for _, tt := range []struct{ typ, query, want string }{
		{"Patient", "gender=female&name=quin", "p"},
		{"Patient", "_has:Observation:patient:code=8867-4", "p"},
		{"Observation", "patient=p&code=http://loinc.org|8302-2&date=2020&value-quantity=170||cm", "o"},
		{"Observation", "code-value-quantity=8302-2$gt100", "o"},
		{"Observation", "subject:Patient.name=quinn&date=ge2021", "o2"},
		{"Observation", "patient=p&_sort=-date&_count=1", "o2"},
		// Walked through the tables by patient that migration 0014
		// filled from the rows above: a token, then a date.
		{"Observation", "patient=p&code=8867-4", "o2"},
		{"Observation", "patient=p&date=ge2021", "o2"},
	} {
		vals, _ := url.ParseQuery(tt.query)
		q, _, err := reg.Parse(tt.typ, vals, true)
		if err != nil {
			t.Fatal(err)
		}
		if q.Count < 0 {
			q.Count = 10
		}
		res, err := db.Search(ctx, q)
		if err != nil || len(res.Matches) != 1 || res.Matches[0].ID != tt.want {
			t.Errorf("%s?%s after the migrations: %v, %v; want %s", tt.typ, tt.query, res, err, tt.want)
		}
	}
	// Rows written after the upgrade are found beside the migrated ones.
	err = db.Transact(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, &store.Version{Type: "Patient", ID: "p2", VersionID: 1, Method: "PUT",
			Body: []byte(`{"resourceType":"Patient","id":"p2","gender":"female","name":[{"family":"Quint"}]}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := reg.Parse("Patient", url.Values{"name": {"quin"}, "_sort": {"_id"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	q.Count = 10
	if res, err := db.Search(ctx, q); err != nil || len(res.Matches) != 2 || res.Matches[0].ID != "p" || res.Matches[1].ID != "p2" {
		t.Errorf("Patient?name=quin after a new write: %v, %v; want p and p2", res, err)
	}
	return db
}

// writeOldIndexRows writes the index rows of a resource as the store wrote
// them before migration 0013, with the type and the parameter code.
func writeOldIndexRows(ctx context.Context, db Upgrader, reg *search.Registry, typ, id, body string) error {
	ix, err := reg.Index(typ, []byte(body))
	if err != nil {
		return err
	}
	var rid int64
	if err := db.QueryRow(ctx, "SELECT rid FROM resources WHERE type = ? AND id = ?", []any{typ, id}, &rid); err != nil {
		return err
	}
	var errs []error
	insert := func(table, cols string, param string, grp int, vals ...any) {
		_, err := db.Exec(ctx, "INSERT INTO "+table+" (rid, type, param, grp, "+cols+") VALUES (?, ?, ?, ?"+strings.Repeat(", ?", len(vals))+")",
			append([]any{rid, typ, param, grp}, vals...)...)
		errs = append(errs, err)
	}
	for _, r := range ix.Tokens {
		insert("search_token", "system, code", r.Param, r.Group, r.System, r.Code)
	}
	for _, r := range ix.Strings {
		insert("search_string", "norm, exact", r.Param, r.Group, r.Norm, r.Exact)
	}
	for _, r := range ix.Dates {
		insert("search_date", "low, high", r.Param, r.Group, r.Low, r.High)
	}
	for _, r := range ix.References {
		insert("search_reference", "target_type, target_id, url", r.Param, r.Group, r.TargetType, r.TargetID, r.URL)
	}
	for _, r := range ix.Quantities {
		insert("search_quantity", "value, system, code", r.Param, r.Group, r.Value, r.System, r.Code)
	}
	for _, r := range ix.Numbers {
		insert("search_number", "value", r.Param, r.Group, r.Value)
	}
	for _, r := range ix.URIs {
		insert("search_uri", "value", r.Param, r.Group, r.Value)
	}
	for _, p := range ix.Patients {
		_, err := db.Exec(ctx, "INSERT INTO search_compartment (rid, patient_id) VALUES (?, ?)", rid, p)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
