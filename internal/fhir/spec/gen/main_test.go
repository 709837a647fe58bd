package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedTableIsCurrent regenerates the table from the core package
// and compares it with the committed ../r4.json.gz. It compares the
// decompressed table (what the server reads); the gzip framing depends on the
// Go release's compress/flate and is checked separately for determinism.
func TestCommittedTableIsCurrent(t *testing.T) {
	pkg, err := defaultPackage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pkg); err != nil {
		t.Skipf("core package not found (%v); the drift check needs ../shared/data beside the module root", err)
	}
	dir := t.TempDir()
	if err := generate(pkg, dir); err != nil {
		t.Fatalf("generate: %v", err)
	}
	got := readGz(t, filepath.Join(dir, OutputName))
	want := readGz(t, filepath.Join("..", OutputName))
	if !bytes.Equal(got, want) {
		t.Fatalf("committed %s is stale (%d bytes, regenerated %d): run go generate ./internal/fhir/spec", OutputName, len(want), len(got))
	}

	again, err := build(pkg)
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, OutputName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("two runs of the generator gave different bytes")
	}
}

// TestCommittedUSCoreTableIsCurrent is TestCommittedTableIsCurrent for the
// US Core table.
func TestCommittedUSCoreTableIsCurrent(t *testing.T) {
	pkg, err := defaultUSCorePackage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pkg); err != nil {
		t.Skipf("US Core package not found (%v); the drift check needs ../shared/data beside the module root", err)
	}
	dir := t.TempDir()
	if err := generateUSCore(pkg, dir); err != nil {
		t.Fatalf("generateUSCore: %v", err)
	}
	got := readGz(t, filepath.Join(dir, USCoreOutputName))
	want := readGz(t, filepath.Join("..", USCoreOutputName))
	if !bytes.Equal(got, want) {
		t.Fatalf("committed %s is stale (%d bytes, regenerated %d): run go generate ./internal/fhir/spec", USCoreOutputName, len(want), len(got))
	}
	again, err := buildUSCore(pkg)
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, USCoreOutputName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("two runs of the generator gave different bytes")
	}
}

func readGz(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("%s: gzip header has mtime %v, name %q; want neither", path, zr.ModTime, zr.Name)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}
