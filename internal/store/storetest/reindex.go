package storetest

import (
	"context"
	"slices"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/store"
)

// Reindexer is a store that can rebuild its search index.
type Reindexer interface {
	store.Store
	// Reindex rebuilds the index rows of every resource when the search
	// parameters differ from those they were built with, or always with
	// force, and returns how many resources it re-indexed.
	Reindex(ctx context.Context, force bool) (int, error)
}

// RunReindex writes resources into a store without a registry, as a
// database from before the search migration holds them, and checks that
// Reindex makes their current versions searchable (through the tables by
// patient too), once: a second run finds the fingerprint unchanged, a
// forced one rebuilds the same rows. open opens the same database each
// time (empty at the first call) and migrates it, with reg when it is not
// nil; RunReindex closes neither.
func RunReindex(t *testing.T, open func(reg *search.Registry) Reindexer) {
	t.Helper()
	ctx := context.Background()
	plain := open(nil)
	for _, v := range []*store.Version{
		{Type: "Patient", ID: "a", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Patient","id":"a","gender":"female"}`)},
		{Type: "Patient", ID: "b", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Patient","id":"b","gender":"female"}`)},
		{Type: "Patient", ID: "b", VersionID: 2, Method: "PUT", Body: []byte(`{"resourceType":"Patient","id":"b","gender":"male"}`)},
		{Type: "Observation", ID: "o", VersionID: 1, Method: "POST", Body: []byte(`{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/a"}}`)},
	} {
		if err := plain.Transact(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, v) }); err != nil {
			t.Fatalf("Put(%s/%s v%d): %v", v.Type, v.ID, v.VersionID, err)
		}
	}
	reg, err := search.NewRegistry(search.Config{Base: SearchBase})
	if err != nil {
		t.Fatal(err)
	}
	db := open(reg)
	checks := []struct {
		typ, query string
		want       []string
	}{
		{"Patient", "gender=female", []string{"a"}}, // b's first version is not current
		{"Patient", "gender=male", []string{"b"}},
		{"Observation", "patient=a&code=http://loinc.org|8302-2", []string{"o"}},
		{"Observation", "subject:Patient.gender=female", []string{"o"}},
	}
	check := func(when string, indexed bool) {
		t.Helper()
		for _, c := range checks {
			want := c.want
			if !indexed {
				want = nil
			}
			if got := sortedIDs(find(t, reg, db, c.typ, c.query)); !slices.Equal(got, want) {
				t.Errorf("%s: %s?%s = %v, want %v", when, c.typ, c.query, got, want)
			}
		}
	}
	check("before Reindex", false)
	if n, err := db.Reindex(ctx, false); err != nil || n != 3 {
		t.Fatalf("Reindex = %d, %v; want 3, nil", n, err)
	}
	check("after Reindex", true)
	if n, err := db.Reindex(ctx, false); err != nil || n != 0 {
		t.Errorf("second Reindex = %d, %v; want 0, nil (fingerprint unchanged)", n, err)
	}
	if n, err := db.Reindex(ctx, true); err != nil || n != 3 {
		t.Errorf("forced Reindex = %d, %v; want 3, nil", n, err)
	}
	check("after a forced Reindex", true)
}
