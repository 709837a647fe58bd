package rest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"smartfhir/internal/rest"
	"smartfhir/internal/testenv"
)

// TestInfernoTransactions loads the ONC test kit's patient Bundles (PUT for
// the Patient, POST with urn:uuid: fullUrls for the rest) as transactions
// and checks that every reference between entries was resolved.
func TestInfernoTransactions(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.SharedData(t), "inferno-us-core", "resources", "uscore_bundle_patient_*.json"))
	if len(files) == 0 {
		t.Skip("no inferno-us-core bundles in the reference data")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Entry []struct {
					Resource struct{ ResourceType string }
				}
			}
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var typs []string
			for _, e := range in.Entry {
				if !seen[e.Resource.ResourceType] {
					seen[e.Resource.ResourceType] = true
					typs = append(typs, e.Resource.ResourceType)
				}
			}
			st := newMemStore()
			api := rest.New(rest.Config{Base: "http://x/fhir", Store: st, ResourceTypes: typs, NewID: newID, MaxBodyBytes: 16 << 20})
			srv := httpServer(t, api)
			resp, err := http.Post(srv+"/fhir", "application/fhir+json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %.500s", resp.StatusCode, out)
			}
			if got := len(st.all); got != len(in.Entry) {
				t.Errorf("%d versions stored, want %d", got, len(in.Entry))
			}
			for _, v := range st.all {
				if bytes.Contains(v.Body, []byte(`"reference":"urn:`)) {
					t.Fatalf("%s/%s still references a urn: %.300s", v.Type, v.ID, v.Body)
				}
			}
		})
	}
}
