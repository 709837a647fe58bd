package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyRules enforces the layering of DESIGN.md §3:
//   - fhir, fhirpath and search (and their sub-packages) use neither
//     net/http nor database/sql, not even indirectly;
//   - only cmd/smartfhir imports a storage backend;
//   - rest, bulk, smart and web see only the store interfaces: no SQL
//     implementation, driver or database/sql.
func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "smartfhir/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath                               string
		Deps, Imports, TestImports, XTestImports []string
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	under := func(path string, roots ...string) bool {
		for _, r := range roots {
			r = "smartfhir/internal/" + r
			if path == r || strings.HasPrefix(path, r+"/") {
				return true
			}
		}
		return false
	}
	backends := []string{"smartfhir/internal/store/sqlite", "smartfhir/internal/store/postgres"}
	for _, p := range pkgs {
		if under(p.ImportPath, "fhir", "fhirpath", "search") {
			for _, bad := range []string{"net/http", "database/sql"} {
				if slices.Contains(p.Deps, bad) {
					t.Errorf("%s depends on %s", p.ImportPath, bad)
				}
			}
		}
		if p.ImportPath != "smartfhir/cmd/smartfhir" && !slices.Contains(backends, p.ImportPath) {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if slices.Contains(backends, imp) {
					t.Errorf("%s imports %s; only cmd/smartfhir may pick a backend", p.ImportPath, imp)
				}
			}
		}
		if under(p.ImportPath, "rest", "bulk", "smart", "web") {
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if strings.HasPrefix(imp, "smartfhir/internal/store/") || imp == "database/sql" ||
					strings.HasPrefix(imp, "github.com/jackc/") || strings.HasPrefix(imp, "modernc.org/") {
					if imp == "smartfhir/internal/store/storetest" {
						continue
					}
					t.Errorf("%s imports %s; it may see only the store interfaces", p.ImportPath, imp)
				}
			}
		}
	}
}
