package importer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
	"smartfhir/internal/store"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	// Sizes: the shared Bundles load first whatever their size, the rest
	// largest first, ties by path.
	for name, size := range map[string]int{"b.ndjson.gz": 2, "a.json": 2, "README.md": 9, "sub/practitionerInformation2.json": 1, "0-hospitalInformation1.json.bz2": 2, "sub/c.NDJSON": 5, "d.json": 1} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, bytes.Repeat([]byte(" "), size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Find([]string{dir, filepath.Join(dir, "a.json")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, fmt.Sprintf("%s:%d:%d:%v", rel, f.Format, f.Compression, f.Shared))
	}
	want := []string{
		"0-hospitalInformation1.json.bz2:0:2:true",
		"sub/practitionerInformation2.json:0:0:true",
		"sub/c.NDJSON:1:0:false",
		"a.json:0:0:false",
		"b.ndjson.gz:1:1:false",
		"d.json:0:0:false",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Find order\n got %v\nwant %v", got, want)
	}
}

// memStore runs units of work without storing: the executor records.
type memStore struct{ store.Store }

func (memStore) Transact(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return fn(ctx, nil)
}

// exec creates or updates whatever it is given, and refuses resources
// whose status is "bad" as invalid, naming the element.
type exec struct {
	mu      sync.Mutex
	written []string
}

func (x *exec) Execute(ctx context.Context, tx store.Tx, req *bundle.Request) (*bundle.Result, error) {
	if bytes.Contains(req.Resource, []byte(`"status":"bad"`)) {
		return nil, &fhir.Error{Code: fhir.Invalid, Issues: []fhir.Issue{{Severity: "error", Code: "code-invalid",
			Diagnostics: "bad status", Expression: []string{"Observation.status"}}}}
	}
	x.mu.Lock()
	x.written = append(x.written, req.Method+" "+req.URL)
	x.mu.Unlock()
	if req.Method == http.MethodPost {
		return &bundle.Result{Status: http.StatusCreated, Location: req.URL + "/" + req.ID + "/_history/1"}, nil
	}
	return &bundle.Result{Status: http.StatusOK}, nil
}

func newConfig() (Config, *exec) {
	x := &exec{}
	n := 0
	var mu sync.Mutex
	p := &bundle.Processor{Store: memStore{}, Exec: x, NewID: func() string { mu.Lock(); defer mu.Unlock(); n++; return fmt.Sprint("id", n) }}
	return Config{Bundles: p, Workers: 2, ChunkSize: 2}, x
}

func TestLoadNDJSON(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"resourceType":"Patient","id":"p1"}
{"resourceType":"Observation","id":"o1","status":"bad"}

{"resourceType":"Observation","status":"final"}
{not json
`))
	zw.Close()
	path := filepath.Join(t.TempDir(), "x.ndjson.gz")
	os.WriteFile(path, gz.Bytes(), 0o600)
	cfg, x := newConfig()
	sum, err := Load(context.Background(), cfg, []File{{Path: path, Format: NDJSON, Compression: Gzip}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 1 || sum.Updated != 1 || sum.Failed != 2 || sum.FilesFailed != 1 {
		t.Errorf("summary %+v; want 1 created, 1 updated, 2 failed in 1 file", sum)
	}
	// The fake store does not roll back: the first attempt at the chunk
	// (before the invalid line was left out) is recorded too.
	if got, want := strings.Join(slices.Compact(x.written), ","), "PUT Patient/p1,POST Observation"; got != want {
		t.Errorf("written %s, want %s", got, want)
	}
	var reports []string
	for _, p := range sum.Problems {
		reports = append(reports, p.String())
	}
	got := strings.Join(reports, "\n")
	for _, want := range []string{path + ": line 2: bad status [Observation.status]", path + ": line 5: not a valid JSON resource"} {
		if !strings.Contains(got, want) {
			t.Errorf("reports lack %q:\n%s", want, got)
		}
	}
}

const txFile = `{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:aaaaaaaa-0000-0000-0000-000000000001","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
 {"resource":{"resourceType":"Observation","status":"bad","subject":{"reference":"urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"}},"request":{"method":"POST","url":"Observation"}},
 {"resource":{"resourceType":"Observation","status":"final"},"request":{"method":"POST","url":"Observation"}}]}`

func TestLoadTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tx.json")
	os.WriteFile(path, []byte(txFile), 0o600)
	for _, tt := range []struct {
		name        string
		skipInvalid bool
		wantCreated int
		wantFailed  int
		wantReport  string
	}{
		{"an invalid entry fails the transaction", false, 0, 3, ": Bundle.entry[1]: bad status [Observation.status]"},
		{"--skip-invalid loads the rest", true, 2, 1, ": Bundle.entry[1] (skipped): bad status [Observation.status]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := newConfig()
			cfg.SkipInvalid = tt.skipInvalid
			sum, err := Load(context.Background(), cfg, []File{{Path: path}})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Created != tt.wantCreated || sum.Failed != tt.wantFailed || len(sum.Problems) != 1 {
				t.Fatalf("summary %+v; want %d created, %d failed, one problem", sum, tt.wantCreated, tt.wantFailed)
			}
			if got := sum.Problems[0].String(); got != path+tt.wantReport {
				t.Errorf("report %q, want %q", got, path+tt.wantReport)
			}
		})
	}
}

func TestProgressLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tx.json")
	os.WriteFile(path, []byte(txFile), 0o600)
	for _, terminal := range []bool{false, true} {
		cfg, _ := newConfig()
		var buf syncBuffer
		cfg.Progress, cfg.Terminal, cfg.Interval, cfg.SkipInvalid = &buf, terminal, 1, true
		if _, err := Load(context.Background(), cfg, []File{{Path: path}}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "1/1 files, 2 resources") && terminal {
			t.Errorf("terminal=%v: final progress line missing: %q", terminal, out)
		}
		if terminal && !strings.HasPrefix(out, "\r") {
			t.Errorf("terminal progress is not redrawn with \\r: %q", out)
		}
		if !terminal && strings.Contains(out, "\r") {
			t.Errorf("plain progress holds \\r: %q", out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// gatedRunner prepares a Bundle (counting how many are being prepared at
// once) and then, as a store with one writer would keep it, holds it until
// `together` Bundles are past their preparation at the same time.
type gatedRunner struct {
	together  int
	mu        sync.Mutex
	preparing int
	maxPrep   int
	waiting   int
	open      chan struct{}
}

func (g *gatedRunner) Run(ctx context.Context, body []byte, opts bundle.Options) (*bundle.Outcome, error) {
	g.mu.Lock()
	g.preparing++
	g.maxPrep = max(g.maxPrep, g.preparing)
	g.mu.Unlock()
	time.Sleep(time.Millisecond) // preparing
	g.mu.Lock()
	g.preparing--
	g.mu.Unlock()
	opts.Prepared()
	g.mu.Lock()
	if g.waiting++; g.waiting == g.together {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(5 * time.Second):
		return &bundle.Outcome{}, errors.New("no other file loaded while this one waited for the store")
	}
	return &bundle.Outcome{Kind: "transaction"}, nil
}

// TestWorkersPrepareWhileOthersWait: Workers bounds the files being read
// and prepared, not the files loading: a file waiting for the store has
// given its slot to the next one.
func TestWorkersPrepareWhileOthersWait(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("%d.json", i))
		os.WriteFile(p, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[]}`), 0o600)
		files = append(files, File{Path: p})
	}
	g := &gatedRunner{together: 2, open: make(chan struct{})}
	sum, err := Load(context.Background(), Config{Bundles: g, Workers: 1}, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Problems) > 0 {
		t.Fatalf("problems: %v", sum.Problems)
	}
	if g.maxPrep != 1 {
		t.Errorf("%d files prepared at once with Workers 1", g.maxPrep)
	}
}

func TestSniffBundle(t *testing.T) {
	for _, c := range []struct {
		body string
		typ  string
		ok   bool
	}{
		{`{"resourceType":"Bundle","type":"transaction","entry":[]}`, "transaction", true},
		{` { "type" : "batch" , "resourceType" : "Bundle" , "entry" : [ ] } `, "batch", true},
		{`{"id":"x","meta":{"tag":[{"code":"a"}]},"resourceType":"Bundle","type":"batch"}`, "batch", true},
		// Read only as far as both are found: the rest is the parse's to check.
		{`{"resourceType":"Bundle","type":"transaction","entry":[`, "transaction", true},
		{`{"resourceType":"Bundle","type":"collection","entry":[]}`, "", false},
		{`{"resourceType":"Bundle","type":"searchset"}`, "", false},
		{`{"resourceType":"Patient","id":"p"}`, "", false},
		{`{"resourceType":"Bundle"}`, "", false},
		{`{"resourceType":"Bundle","type":7}`, "", false},
		{`{"resourcetype":"Bundle","type":"batch"}`, "", false},
		{`{"resourceType":"Bundle",`, "", false},
		{`{"resourceType":"Bundle","meta":{,"type":"batch"}`, "", false},
		{`[{"resourceType":"Bundle","type":"batch"}]`, "", false},
		{``, "", false},
	} {
		typ, ok := sniffBundle([]byte(c.body))
		if ok != c.ok || (ok && typ != c.typ) {
			t.Errorf("sniffBundle(%s) = %q, %v; want %q, %v", c.body, typ, ok, c.typ, c.ok)
		}
	}
}

// dependentRunner plays a store in which some transactions refer
// conditionally to resources that other files create: a Bundle naming a
// dependency in `needs` fails with a conditional reference that matches
// nothing until a Bundle providing it in `provides` has run. A Bundle
// that names one in `after` waits (up to a second) until that Bundle has
// been tried, which fixes the order of the first attempts.
type dependentRunner struct {
	mu       sync.Mutex
	stored   map[string]bool
	attempts map[string]int
}

func (d *dependentRunner) Run(ctx context.Context, body []byte, opts bundle.Options) (*bundle.Outcome, error) {
	var b struct{ ID, Needs, Provides, After string }
	if err := json.Unmarshal(body, &b); err != nil {
		return &bundle.Outcome{}, err
	}
	opts.Prepared()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 0; b.After != "" && d.attempts[b.After] == 0 && i < 100; i++ {
		d.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		d.mu.Lock()
	}
	d.attempts[b.ID]++
	out := &bundle.Outcome{Kind: "transaction", Results: []*bundle.Result{{Status: 201}}, Errs: []error{nil}, Methods: []string{"POST"}}
	if b.Needs != "" && !d.stored[b.Needs] {
		return out, &bundle.NoMatchError{Ref: "Practitioner?identifier=" + b.Needs}
	}
	if b.Provides != "" {
		d.stored[b.Provides] = true
	}
	return out, nil
}

// TestRetriesUnresolvedConditionalReferences: files whose transactions
// refer conditionally to resources in files loaded after them are loaded
// again once those have, chains included; a file whose reference no file
// provides fails once, with its error.
func TestRetriesUnresolvedConditionalReferences(t *testing.T) {
	dir := t.TempDir()
	var files []File
	for _, f := range []struct{ id, needs, provides, after string }{
		// Each is first tried before the file that provides what it needs.
		{"patient", "npi-1", "", ""},
		{"practitioners", "org-1", "npi-1", "patient"},
		{"organizations", "", "org-1", "practitioners"},
		{"orphan", "npi-unknown", "", ""},
	} {
		p := filepath.Join(dir, f.id+".json")
		os.WriteFile(p, fmt.Appendf(nil, `{"resourceType":"Bundle","type":"transaction","id":%q,"needs":%q,"provides":%q,"after":%q,"entry":[]}`,
			f.id, f.needs, f.provides, f.after), 0o600)
		files = append(files, File{Path: p})
	}
	d := &dependentRunner{stored: map[string]bool{}, attempts: map[string]int{}}
	sum, err := Load(context.Background(), Config{Bundles: d, Workers: 1}, files)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 4 || sum.Created != 3 || sum.Failed != 1 || sum.Retried != 3 {
		t.Errorf("files %d, created %d, failed %d, retried %d; want 4, 3, 1, 3", sum.Files, sum.Created, sum.Failed, sum.Retried)
	}
	if len(sum.Problems) != 1 || !strings.Contains(sum.Problems[0].String(), "orphan.json") || !strings.Contains(sum.Problems[0].String(), "npi-unknown") {
		t.Errorf("problems %v, want the orphan's unresolved reference only", sum.Problems)
	}
	if d.attempts["organizations"] != 1 || d.attempts["practitioners"] != 2 || d.attempts["patient"] < 2 || d.attempts["orphan"] > 4 {
		t.Errorf("attempts %v", d.attempts)
	}
}
