package search_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/testenv"
)

// TestCompartmentsMatchIndex checks the fast compartment extraction the
// access policy uses against the full index, on every resource of the
// Inferno US Core patients, compacted as the store keeps them.
func TestCompartmentsMatchIndex(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inferno-us-core", "resources")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Inferno bundles in %s: %v", dir, err)
	}
	reg, err := search.NewRegistry(search.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n, inCompartment := 0, 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				FullURL  string
				Resource json.RawMessage
			}
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// The transactions refer to each other by urn:uuid fullUrls; as
		// stored, those are Type/id references.
		for _, e := range b.Entry {
			var h struct{ ResourceType, ID string }
			if json.Unmarshal(e.Resource, &h) == nil && h.ID != "" && strings.HasPrefix(e.FullURL, "urn:uuid:") {
				raw = bytes.ReplaceAll(raw, []byte(`"`+e.FullURL+`"`), []byte(`"`+h.ResourceType+"/"+h.ID+`"`))
			}
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i, e := range b.Entry {
			var h struct{ ResourceType string }
			if json.Unmarshal(e.Resource, &h) != nil || h.ResourceType == "" {
				continue
			}
			ix, err := reg.Index(h.ResourceType, e.Resource)
			if err != nil {
				t.Fatalf("%s entry %d: Index: %v", filepath.Base(f), i, err)
			}
			compact, err := json.Marshal(e.Resource)
			if err != nil {
				t.Fatal(err)
			}
			got, err := reg.Compartments(h.ResourceType, compact)
			if err != nil {
				t.Fatalf("%s entry %d: Compartments: %v", filepath.Base(f), i, err)
			}
			if !slices.Equal(got, ix.Patients) {
				t.Errorf("%s entry %d (%s): Compartments %v, Index %v", filepath.Base(f), i, h.ResourceType, got, ix.Patients)
			}
			n++
			if len(ix.Patients) > 0 {
				inCompartment++
			}
		}
	}
	// Most of the data is some patient's: a vacuous comparison would not.
	if n < 100 || inCompartment < n/2 {
		t.Fatalf("compared %d resources, %d in a compartment", n, inCompartment)
	}
}

func TestCompartmentsRejectsBadBodies(t *testing.T) {
	reg, err := search.NewRegistry(search.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{``, `[]`, `{`, `{"resourceType":"Patient"`, `{"resourceType":"Observation","id":"x"}`, `{"resourceType":"Patient","x"}`, `{"resourceType":"Patient","x":[}`, `{"resourceType":"Patient" ,"id":"x"}`} {
		if _, err := reg.Compartments("Patient", []byte(body)); err == nil {
			t.Errorf("Compartments(%q) = nil error", body)
		}
	}
}
