// Package testenv finds what tests need from outside the repository: the
// reference data in ../shared/data beside the module root (see its README).
// It is imported by tests only.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedData returns the path of ../shared/data beside the module root. It
// skips the test, saying why, when the data is not there (a clone
// elsewhere); in CI it always is.
func SharedData(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test directory: cannot find ../shared/data")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		t.Skipf("reference data not found at %s: %v", data, err)
	}
	return data
}
