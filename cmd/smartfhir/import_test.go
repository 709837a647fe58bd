package main

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"smartfhir/internal/search"
	"smartfhir/internal/testenv"
)

func TestImportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"resourceType":"Patient","id":"p1","gender":"male"}` + strings.Repeat(" ", 4096)))
	zw.Close()
	truncated := write("truncated.json.gz", gz.Bytes()[:gz.Len()/2])
	notGzip := write("plain.json.gz", []byte(`{"resourceType":"Patient"}`))
	notBzip2 := write("plain.ndjson.bz2", []byte(`{"resourceType":"Patient"}`))
	badJSON := write("bad.json", []byte(`{"resourceType":"Patient",`))
	unknown := write("notes.txt", []byte("hello"))
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)

	tests := []struct {
		name      string
		args      []string
		wantErr   string
		wantPrint string // in stdout: the per-file report
	}{
		{"no path", nil, "name at least one file or folder", ""},
		{"missing path", []string{filepath.Join(dir, "nope.json")}, "nope.json: no such file or folder", ""},
		{"unknown extension", []string{unknown}, "notes.txt: unknown file type", ""},
		{"folder without data", []string{empty}, "no .json or .ndjson files", ""},
		{"bad workers", []string{"--workers", "-1", badJSON}, "--workers", ""},
		{"truncated gzip", []string{truncated}, "1 problem(s)", "truncated.json.gz: corrupt gzip data: unexpected EOF"},
		{"not gzip at all", []string{notGzip}, "1 problem(s)", "plain.json.gz: not a valid gzip file"},
		{"not bzip2 at all", []string{notBzip2}, "1 problem(s)", "plain.ndjson.bz2: line 1: corrupt bzip2 data"},
		{"invalid JSON", []string{badJSON}, "1 problem(s)", "bad.json: not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"import", "--data-dir", t.TempDir()}, tt.args...)
			err := run(context.Background(), args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantPrint) {
				t.Errorf("output lacks %q:\n%s", tt.wantPrint, out.String())
			}
		})
	}
}

// importInto runs `smartfhir import` on the server's database.
func importInto(t *testing.T, s *testServer, dbArgs []string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append(append([]string{"import", "--data-dir", s.DataDir, "--base-url", s.BaseURL}, dbArgs...), args...)
	err = run(context.Background(), full, &out, &errOut)
	return out.String(), err
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// historyTotal is the number of versions of a type, from type history
// (which does not depend on search).
func historyTotal(t *testing.T, base, typ string) int {
	t.Helper()
	status, m := getJSON(t, base+"/fhir/"+typ+"/_history?_count=1")
	if status != 200 {
		t.Fatalf("%s history: status %d", typ, status)
	}
	n, _ := m["total"].(float64)
	return int(n)
}

type bundleFile struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Type         string `json:"type"`
	Entry        []struct {
		Resource json.RawMessage `json:"resource"`
		Request  struct{ Method, URL string }
	} `json:"entry"`
}

func readBundle(t *testing.T, path string) bundleFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".bz2") {
		r = bzip2.NewReader(f)
	}
	var b bundleFile
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func typeOf(raw json.RawMessage) string {
	var h struct{ ResourceType string }
	json.Unmarshal(raw, &h)
	return h.ResourceType
}

func TestImportInferno(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inferno-us-core", "resources")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	// What the files hold, counted independently of the importer.
	want := map[string]int{}
	for _, f := range files {
		b := readBundle(t, f)
		if b.ResourceType != "Bundle" {
			want[b.ResourceType]++
			continue
		}
		for _, e := range b.Entry {
			want[typeOf(e.Resource)]++
		}
	}
	want["Observation"]-- // the one with effectivePeriod.stop

	forEachBackend(t, func(t *testing.T, dbArgs []string) {
		// The server runs while the import writes to its database.
		s := startServer(t, dbArgs...)
		out, err := importInto(t, s, dbArgs, dir)
		if err == nil {
			t.Fatalf("import without --skip-invalid succeeded; want Patient 355's transaction to fail:\n%s", out)
		}
		if !strings.Contains(out, "uscore_bundle_patient_355.json: Bundle.entry[266]: ") || !strings.Contains(out, "Observation.effectivePeriod.stop") {
			t.Errorf("report does not name file, entry and element:\n%s", out)
		}
		if got := historyTotal(t, s.BaseURL, "Observation"); got >= want["Observation"] {
			t.Errorf("%d Observations after a failed transaction; want fewer than %d (none of 355's)", got, want["Observation"])
		}

		out, err = importInto(t, s, dbArgs, "--skip-invalid", dir)
		problems := regexp.MustCompile(`(?m)^error: `).FindAllString(out, -1)
		if err == nil || len(problems) != 1 {
			t.Fatalf("err = %v and %d problems, want exactly the one expected report:\n%s", err, len(problems), out)
		}
		if !strings.Contains(out, "uscore_bundle_patient_355.json: Bundle.entry[266] (skipped): ") {
			t.Errorf("report does not name the skipped entry:\n%s", out)
		}
		for typ, n := range want {
			got := historyTotal(t, s.BaseURL, typ)
			// PUT entries (the client_test Bundle, the Patients, the
			// Group) were written twice: once in each run.
			if got < n {
				t.Errorf("%s: %d versions visible to the server, want at least %d", typ, got, n)
			}
		}
		if status, p := getJSON(t, s.BaseURL+"/fhir/Patient/355"); status != 200 || p["id"] != "355" {
			t.Errorf("GET Patient/355: %d %v", status, p["id"])
		}
		g := readBundle(t, filepath.Join(dir, "uscore_group_1a.json"))
		if status, _ := getJSON(t, s.BaseURL+"/fhir/Group/"+g.ID); status != 200 {
			t.Errorf("the Group file was not stored under its id %s: %d", g.ID, status)
		}
	})
}

// TestImportSyntheaConditionalReferences loads Synthea's two shared batch
// files and a few patients, then checks that every conditional reference
// was resolved to a resource that exists.
func TestImportSyntheaConditionalReferences(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "synthea-120")
	shared, _ := filepath.Glob(filepath.Join(dir, "0-*.json.bz2"))
	patients := []string{
		filepath.Join(dir, "8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json.bz2"),
		filepath.Join(dir, "8708d3e1-f718-96bb-03f0-f2a6564ae1cd.json.bz2"),
	}
	if len(shared) != 2 {
		t.Fatalf("want Synthea's 2 shared files in %s, found %v", dir, shared)
	}
	total, conditional := 0, 0
	types := map[string]bool{}
	condRef := regexp.MustCompile(`"reference"\s*:\s*"[A-Za-z]+\?`)
	for _, f := range append(slicesClone(shared), patients...) {
		b := readBundle(t, f)
		total += len(b.Entry)
		for _, e := range b.Entry {
			types[typeOf(e.Resource)] = true
			conditional += len(condRef.FindAll(e.Resource, -1))
		}
	}
	if conditional == 0 {
		t.Fatal("the patient files hold no conditional references: wrong test data")
	}
	s := startServer(t)
	out, err := importInto(t, s, nil, append(slicesClone(patients), shared...)...)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if want := "resources loaded"; !strings.Contains(out, want) {
		t.Errorf("no summary: %s", out)
	}
	loaded := 0
	checked := map[string]bool{}
	resolved := 0
	for typ := range types {
		status, b := getJSON(t, s.BaseURL+"/fhir/"+typ+"/_history?_count=1000")
		if status != 200 {
			t.Fatalf("%s history: %d", typ, status)
		}
		entries, _ := b["entry"].([]any)
		loaded += len(entries)
		for _, e := range entries {
			res, _ := e.(map[string]any)["resource"]
			raw, _ := json.Marshal(res)
			for _, m := range regexp.MustCompile(`"reference":"([^"]*)"`).FindAllSubmatch(raw, -1) {
				ref := string(m[1])
				if strings.HasPrefix(ref, "#") {
					continue // contained
				}
				if strings.Contains(ref, "?") || strings.HasPrefix(ref, "urn:") {
					t.Errorf("%s holds an unresolved reference %s", typ, ref)
					continue
				}
				if typ != "Practitioner" && typ != "Organization" && typ != "Location" && typ != "PractitionerRole" &&
					(strings.HasPrefix(ref, "Practitioner/") || strings.HasPrefix(ref, "Organization/") || strings.HasPrefix(ref, "Location/")) {
					resolved++
				}
				if checked[ref] {
					continue
				}
				checked[ref] = true
				if status, _ := getJSON(t, s.BaseURL+"/fhir/"+ref); status != 200 {
					t.Errorf("%s refers to %s, which answers %d", typ, ref, status)
				}
			}
		}
	}
	if loaded != total {
		t.Errorf("%d resources visible, want the %d of the files", loaded, total)
	}
	if resolved < conditional {
		t.Errorf("%d references to shared resources after the import, want at least the %d conditional ones", resolved, conditional)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestImportSharedUnderOtherNames: Synthea's shared Bundles under names
// the import does not know load in whatever order the files come, and a
// patient's transaction whose conditional references they resolve loads
// all the same (tried again after them if it came first).
func TestImportSharedUnderOtherNames(t *testing.T) {
	src := filepath.Join(testenv.SharedData(t), "synthea-120")
	shared, _ := filepath.Glob(filepath.Join(src, "0-*.json.bz2"))
	if len(shared) != 2 {
		t.Fatalf("want Synthea's 2 shared files in %s, found %v", src, shared)
	}
	dir := t.TempDir()
	total := 0
	for i, f := range append(shared, filepath.Join(src, "8a4c9c04-1524-9f1c-d65b-9b17e4520fef.json.bz2")) {
		total += len(readBundle(t, f).Entry)
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("export-%d.json.bz2", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t)
	out, err := importInto(t, s, nil, dir)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("3 files: %d resources loaded (%d created, 0 updated, 0 already present, 0 deleted), 0 failed, 0 errors", total, total); !strings.Contains(out, want) {
		t.Errorf("summary:\n%s\nwant %q", out, want)
	}
}

// TestImportLeavesIndexesCurrent: an import records the parameter set its
// index rows were built with, so the next start does not re-index
// everything it wrote.
func TestImportLeavesIndexesCurrent(t *testing.T) {
	file := filepath.Join(testenv.SharedData(t), "inferno-us-core", "resources", "uscore_bundle_patient_85.json")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"import", "--data-dir", dir, file}, &out, &errb); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out.String(), errb.String())
	}
	reg, err := search.NewRegistry(search.Config{Base: "http://localhost:8080/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	f := dbFlags{DataDir: dir, search: reg}
	db, err := f.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.Reindex(context.Background(), false)
	if err != nil || n != 0 {
		t.Errorf("Reindex after an import = %d, %v; want nothing to re-index", n, err)
	}
}

// TestImportUpdatesCachedReads reads a resource until the server answers it
// from its read cache, updates it with `smartfhir import` beside the
// server, and reads the new version at once.
func TestImportUpdatesCachedReads(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	write := func(gender string) {
		body := `{"resourceType":"Patient","id":"cached","gender":"` + gender + `"}`
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := importInto(t, s, nil, file); err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
	}
	hits := func() float64 {
		resp, err := http.Get(s.BaseURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^smartfhir_read_cache_hits_total (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no smartfhir_read_cache_hits_total in /metrics")
		}
		f, _ := strconv.ParseFloat(string(m[1]), 64)
		return f
	}
	read := func() map[string]any {
		status, p := getJSON(t, s.BaseURL+"/fhir/Patient/cached")
		if status != 200 {
			t.Fatalf("GET Patient/cached: %d", status)
		}
		return p
	}
	write("male")
	read()
	before := hits()
	if p := read(); p["gender"] != "male" {
		t.Fatalf("gender %v, want male", p["gender"])
	}
	if got := hits(); got != before+1 {
		t.Fatalf("read cache hits %v after %v, want one more: the second read of an unchanged database", got, before)
	}
	write("female")
	if p := read(); p["gender"] != "female" || p["meta"].(map[string]any)["versionId"] != "2" {
		t.Fatalf("after the import: %v, want version 2, female", p)
	}
}

func TestDefaultWorkers(t *testing.T) {
	for _, c := range []struct {
		kind  string
		cores int
		want  int
	}{
		{"sqlite", 1, 1}, {"sqlite", 2, 1}, {"sqlite", 8, 7},
		{"postgres", 1, 1}, {"postgres", 2, 2}, {"postgres", 8, 8},
	} {
		if got := defaultWorkers(c.kind, c.cores); got != c.want {
			t.Errorf("defaultWorkers(%q, %d) = %d, want %d", c.kind, c.cores, got, c.want)
		}
	}
}

// TestImportSynthea120 loads the whole synthea-120 set, as issue 3 asks
// (all 92,114 resources, about 22,000 conditional references resolved),
// into a running server on each backend: every transaction commits, since
// a conditional reference that does not resolve fails its Bundle, and the
// server sees the patients at once.
//
// It takes about 20 s a backend, and seven minutes under the race
// detector, which instruments every byte bzip2 and the JSON passes touch:
// .ci/run runs it in a step of its own without -race, and the -race run
// leaves it to that step.
func TestImportSynthea120(t *testing.T) {
	if raceDetector {
		t.Skip("run without the race detector (.ci/run's own step for it): 7 minutes under it")
	}
	dir := filepath.Join(testenv.SharedData(t), "synthea-120")
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			args := be.args(t)
			s := startServer(t, args...)
			out, err := importInto(t, s, args, dir)
			if err != nil {
				t.Fatalf("import: %v\n%s", err, out)
			}
			// The set's size, from its README: 2 shared batch Bundles and
			// 120 patients' transactions, 92,114 entries, all creates.
			if want := "122 files: 92114 resources loaded (92114 created, 0 updated, 0 already present, 0 deleted), 0 failed, 0 errors"; !strings.Contains(out, want) {
				t.Errorf("summary:\n%s\nwant %q", out, want)
			}
			status, b := getJSON(t, s.BaseURL+"/fhir/Patient?_summary=count")
			if n, _ := b["total"].(float64); status != 200 || n != 120 {
				t.Errorf("Patient?_summary=count: %d, total %v; want 120", status, b["total"])
			}
			// The conditional references resolved: Encounters name their
			// practitioner by NPI in the files, and find it by the NPI's
			// system here, every one of them.
			status, b = getJSON(t, s.BaseURL+"/fhir/Encounter?_summary=count&practitioner.identifier=http://hl7.org/fhir/sid/us-npi|")
			if n, _ := b["total"].(float64); status != 200 || n == 0 {
				t.Errorf("Encounters whose practitioner has an NPI: %d, total %v; want all of them", status, b["total"])
			}
			status, all := getJSON(t, s.BaseURL+"/fhir/Encounter?_summary=count")
			if status != 200 || all["total"] != b["total"] {
				t.Errorf("%v Encounters, %v with a practitioner found by NPI; want the same", all["total"], b["total"])
			}
		})
	}
}
