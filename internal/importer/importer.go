package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smartfhir/internal/bundle"
	"smartfhir/internal/fhir"
)

// Runner runs one batch or transaction Bundle exactly as POST [base] does:
// *bundle.Processor.
type Runner interface {
	Run(ctx context.Context, body []byte, opts bundle.Options) (*bundle.Outcome, error)
}

var _ Runner = (*bundle.Processor)(nil)

// Config is what Load needs.
type Config struct {
	Bundles Runner
	// Workers is how many files are read and prepared (parsed, validated,
	// indexed) at once, at least 1; twice as many and one more load at once, the others
	// waiting for the store (SQLite has one writer).
	Workers int
	// SkipInvalid loads a transaction Bundle that holds invalid entries
	// without them (and without the entries that refer to them) instead of
	// failing it as a whole; the left-out entries are reported.
	SkipInvalid bool
	// Progress, when set, receives a progress line every Interval:
	// redrawn in place with \r when Terminal, one line each time otherwise.
	Progress io.Writer
	Terminal bool
	Interval time.Duration
	// ChunkSize is how many NDJSON lines (or collection entries) go into
	// one unit of work; 500 when zero.
	ChunkSize int
}

// Problem is something that did not load.
type Problem struct {
	File string
	// Entry is the index in Bundle.entry (-1 when the problem is not about
	// one entry); Line is the NDJSON line, from 1 (0 for other files).
	Entry, Line int
	// Paths are the offending elements, as FHIRPath (validation failures).
	Paths   []string
	Message string
	// Skipped is true when --skip-invalid left the entry out and the rest
	// of its Bundle loaded.
	Skipped bool
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	switch {
	case p.Line > 0:
		fmt.Fprintf(&b, ": line %d", p.Line)
	case p.Entry >= 0:
		fmt.Fprintf(&b, ": Bundle.entry[%d]", p.Entry)
	}
	if p.Skipped {
		b.WriteString(" (skipped)")
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	if len(p.Paths) > 0 {
		b.WriteString(" [" + strings.Join(p.Paths, ", ") + "]")
	}
	return b.String()
}

// Summary is what Load did.
type Summary struct {
	Files       int // files read
	FilesFailed int // files of which nothing, or not everything, loaded
	// Resources by outcome: created, updated (PUT of an existing
	// resource), unchanged (a conditional create that found its resource),
	// deleted, failed (not loaded, whatever the reason).
	Created, Updated, Unchanged, Deleted, Failed int
	Problems                                     []Problem
	Elapsed                                      time.Duration
	// ReadTime is the time spent reading and decompressing files,
	// LoadTime the time spent in units of work, both summed over workers.
	ReadTime, LoadTime time.Duration
	// Retried is how many files were tried again once the others had
	// loaded: transactions whose conditional references had matched
	// nothing (see Load).
	Retried int
}

// Loaded is how many resources were written or found present.
func (s *Summary) Loaded() int { return s.Created + s.Updated + s.Unchanged + s.Deleted }

// Rate is resources loaded per second.
func (s *Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Loaded()) / s.Elapsed.Seconds()
}

type loader struct {
	cfg   Config
	start time.Time

	loaded, failed, filesDone atomic.Int64
	files                     int

	mu  sync.Mutex
	sum Summary

	// slots holds a token for each file (or NDJSON chunk) being read and
	// prepared: cfg.Workers of them. A file gives its token back once its
	// Bundle is prepared, while it waits for the store.
	slots chan struct{}

	// deferred holds the files to load again once the others have (under
	// mu): their transactions failed on a conditional reference that
	// matched nothing. Each keeps its last result, which counts if no
	// later attempt does better.
	deferred []deferredFile
}

type deferredFile struct {
	f          File
	r          *result
	read, load time.Duration
}

// acquire waits for a slot to read and prepare a file; release gives it
// back and may be called more than once. ok is false when ctx ended first.
func (l *loader) acquire(ctx context.Context) (release func(), ok bool) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }, true
}

// Load loads files in order: the shared ones one after the other, then the
// rest inFlight(cfg.Workers) at a time, cfg.Workers of them being read and
// prepared at any moment, and last, again, the transactions that failed
// because a conditional reference matched nothing (retryDeferred). A
// problem with one file or entry is reported in the Summary and the rest
// goes on; the error is only the context's.
func Load(ctx context.Context, cfg Config, files []File) (*Summary, error) {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.ChunkSize < 1 {
		cfg.ChunkSize = 500
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
		if cfg.Terminal {
			cfg.Interval = 250 * time.Millisecond
		}
	}
	l := &loader{cfg: cfg, start: time.Now(), files: len(files), slots: make(chan struct{}, cfg.Workers)}
	stop := l.progress()
	var rest []File
	for _, f := range files {
		if !f.Shared {
			rest = append(rest, f)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		l.loadFile(ctx, f)
	}
	jobs := make(chan File)
	var wg sync.WaitGroup
	for range inFlight(cfg.Workers) {
		wg.Go(func() {
			for f := range jobs {
				l.loadFile(ctx, f)
			}
		})
	}
feed:
	for _, f := range rest {
		select {
		case jobs <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	l.retryDeferred(ctx)
	stop()
	l.sum.Elapsed = time.Since(l.start)
	return &l.sum, ctx.Err()
}

// retryDeferred tries again, one after the other, the files whose
// transactions failed because a conditional reference matched nothing:
// the resources they look for may have come in a file loaded since, such
// as shared resources in a batch Bundle the import could not tell by its
// name (Find). It goes round while a round loads at least one of them, so
// that a chain of such files resolves; the files still failing then count
// with their last result.
func (l *loader) retryDeferred(ctx context.Context) {
	retried := map[string]bool{}
	for ctx.Err() == nil && len(l.deferred) > 0 {
		pending := l.deferred
		l.deferred = nil
		for _, d := range pending {
			retried[d.f.Path] = true
			l.loadFile(ctx, d.f)
		}
		if len(l.deferred) == len(pending) {
			break // none of them loaded: nothing new will resolve
		}
	}
	for _, d := range l.deferred {
		l.finish(d.r, d.read, d.load)
	}
	l.deferred = nil
	l.sum.Retried = len(retried)
}

// inFlight is how many files load at once for workers reading and
// preparing at once: the others wait, prepared, for the store. A writer
// that always has the next Bundle waiting never idles, and SQLite's
// committer then writes several Bundles in one transaction, so the index
// pages they share reach the write-ahead log once (synthea-120 wrote
// 3.3 GB to disk with two files at once, 2.0 GB with four). One more
// keeps a worker preparing while two files wait for the store: with
// SQLite's one worker, reading and preparing take about as long as
// writing, and with two in flight each waited for the other (synthea-120
// in turns: 4,789/4,940/4,881 resources/s against 4,619/4,636/4,721, for
// 100–250 MB more memory).
func inFlight(workers int) int { return 2*workers + 1 }

// progress starts the progress reporter; the function it returns stops it
// and finishes the line.
func (l *loader) progress() (stop func()) {
	if l.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(l.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.printProgress()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if l.cfg.Terminal {
			l.printProgress()
			fmt.Fprintln(l.cfg.Progress)
		}
	}
}

func (l *loader) printProgress() {
	n := l.loaded.Load()
	el := time.Since(l.start)
	line := fmt.Sprintf("%d/%d files, %d resources, %.0f resources/s, %d errors, %s",
		l.filesDone.Load(), l.files, n, float64(n)/el.Seconds(), l.failed.Load(), el.Truncate(time.Second))
	if l.cfg.Terminal {
		fmt.Fprintf(l.cfg.Progress, "\r%s\x1b[K", line)
	} else {
		fmt.Fprintln(l.cfg.Progress, line)
	}
}

// result is what loading (part of) a file did.
type result struct {
	created, updated, unchanged, deleted, failed int
	problems                                     []Problem
	// noMatch says the file's transaction failed, writing nothing,
	// because a conditional reference matched no resource.
	noMatch bool
}

func (l *loader) add(r *result, fileFailed bool, read, load time.Duration) {
	l.loaded.Add(int64(r.created + r.updated + r.unchanged + r.deleted))
	l.failed.Add(int64(r.failed))
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.sum
	s.Created += r.created
	s.Updated += r.updated
	s.Unchanged += r.unchanged
	s.Deleted += r.deleted
	s.Failed += r.failed
	s.Problems = append(s.Problems, r.problems...)
	s.ReadTime += read
	s.LoadTime += load
	if fileFailed {
		s.FilesFailed++
	}
}

// loadFile loads one file and counts what it did, or sets it aside for
// retryDeferred.
func (l *loader) loadFile(ctx context.Context, f File) {
	r, read, load := l.readAndLoad(ctx, f)
	if r != nil && r.noMatch {
		l.mu.Lock()
		l.deferred = append(l.deferred, deferredFile{f, r, read, load})
		l.mu.Unlock()
		return
	}
	l.finish(r, read, load)
}

// finish counts a file as done with result r (nil when the import was
// interrupted before the file was read).
func (l *loader) finish(r *result, read, load time.Duration) {
	l.filesDone.Add(1)
	l.mu.Lock()
	l.sum.Files++
	l.mu.Unlock()
	if r != nil {
		l.add(r, len(r.problems) > 0, read, load)
	}
}

func (l *loader) readAndLoad(ctx context.Context, f File) (r *result, read, load time.Duration) {
	if f.Format == NDJSON {
		return l.loadNDJSON(ctx, f)
	}
	release, ok := l.acquire(ctx)
	if !ok {
		return nil, 0, 0
	}
	defer release()
	t0 := time.Now()
	body, err := f.readAll()
	read = time.Since(t0)
	if err != nil {
		return &result{problems: []Problem{{File: f.Path, Entry: -1, Message: err.Error()}}}, read, 0
	}
	t0 = time.Now()
	r = l.loadJSON(ctx, f.Path, body, release)
	return r, read, time.Since(t0)
}

// loadJSON loads one JSON file: a batch or transaction Bundle as POST
// [base] would, the entries of any other Bundle and any other resource as
// resources of their own (update under their id).
func (l *loader) loadJSON(ctx context.Context, path string, body []byte, prepared func()) *result {
	if typ, ok := sniffBundle(body); ok {
		return l.runBundle(ctx, path, body, typ == "transaction" && l.cfg.SkipInvalid, nil, prepared)
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return &result{problems: []Problem{{File: path, Entry: -1, Message: "not valid JSON: " + err.Error()}}}
	}
	if head.ResourceType == "Bundle" && (head.Type == "batch" || head.Type == "transaction") {
		return l.runBundle(ctx, path, body, head.Type == "transaction" && l.cfg.SkipInvalid, nil, prepared)
	}
	if head.ResourceType == "Bundle" && head.Type == "collection" {
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return &result{problems: []Problem{{File: path, Entry: -1, Message: "not a valid Bundle: " + err.Error()}}}
		}
		items := make([]item, len(b.Entry))
		for i, e := range b.Entry {
			items[i] = item{raw: e.Resource, entry: i}
		}
		return l.loadResources(ctx, path, items, prepared)
	}
	return l.loadResources(ctx, path, []item{{raw: body, entry: -1}}, prepared)
}

// sniffBundle tells whether body begins as a batch or transaction Bundle
// does: its top-level resourceType and type, read until both are found
// (before the entries, whose bytes are nearly all of a Bundle, in every
// Bundle seen so far) and "Bundle" and "batch" or "transaction". It checks
// only what it reads; the Bundle's parse checks the rest. Anything else,
// a member named in another case included, is for loadJSON to look at as
// a whole.
func sniffBundle(body []byte) (typ string, ok bool) {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	var resourceType string
	for d.More() && (resourceType == "" || typ == "") {
		k, err := d.Token()
		if err != nil {
			return "", false
		}
		var v any = new(json.RawMessage)
		switch k {
		case "resourceType":
			v = &resourceType
		case "type":
			v = &typ
		}
		if d.Decode(v) != nil {
			return "", false
		}
	}
	return typ, resourceType == "Bundle" && (typ == "batch" || typ == "transaction")
}

// item is one resource of an NDJSON file, a collection or a file of its
// own, with where it came from.
type item struct {
	raw   json.RawMessage
	line  int // NDJSON line, from 1
	entry int // collection entry index, -1 otherwise
}

func (it item) problem(path, msg string, paths []string, skipped bool) Problem {
	return Problem{File: path, Entry: it.entry, Line: it.line, Message: msg, Paths: paths, Skipped: skipped}
}

// loadNDJSON loads an NDJSON file ChunkSize lines at a time, reading the
// next chunk while the last one is written.
func (l *loader) loadNDJSON(ctx context.Context, f File) (r *result, read, load time.Duration) {
	r = &result{}
	t0 := time.Now()
	rc, err := f.open()
	if err != nil {
		r.problems = append(r.problems, Problem{File: f.Path, Entry: -1, Message: err.Error()})
		return r, time.Since(t0), 0
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	var chunk []item
	release, ok := l.acquire(ctx)
	if !ok {
		return r, time.Since(t0), 0
	}
	defer func() { release() }()
	flush := func() {
		if len(chunk) == 0 {
			return
		}
		t := time.Now()
		r.merge(l.loadResources(ctx, f.Path, chunk, release))
		load += time.Since(t)
		chunk = nil
		release, ok = l.acquire(ctx)
		if !ok {
			release = func() {}
		}
	}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		chunk = append(chunk, item{raw: bytes.Clone(b), line: line, entry: -1})
		if len(chunk) == l.cfg.ChunkSize {
			flush()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := sc.Err(); err != nil {
		msg := err.Error()
		switch f.Compression {
		case Gzip:
			msg = "corrupt gzip data: " + msg
		case Bzip2:
			msg = "corrupt bzip2 data: " + msg
		}
		r.problems = append(r.problems, Problem{File: f.Path, Entry: -1, Line: line + 1, Message: msg})
	}
	flush()
	return r, time.Since(t0) - load, load
}

func (r *result) merge(o *result) {
	r.created += o.created
	r.updated += o.updated
	r.unchanged += o.unchanged
	r.deleted += o.deleted
	r.failed += o.failed
	r.problems = append(r.problems, o.problems...)
}

// loadResources stores resources that stand on their own: each is updated
// under its id (created with a server id when it has none). They go into
// one transaction Bundle for speed; as they are independent, an invalid one
// is always left out and reported rather than failing the others, and
// when the unit fails for another reason they are run again as a batch,
// each on its own.
func (l *loader) loadResources(ctx context.Context, path string, items []item, prepared func()) *result {
	r := &result{}
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
	var kept []item
	for _, it := range items {
		var h struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(it.raw, &h); err != nil {
			r.failed++
			r.problems = append(r.problems, it.problem(path, "not a valid JSON resource: "+err.Error(), nil, false))
			continue
		}
		if h.ResourceType == "" {
			r.failed++
			r.problems = append(r.problems, it.problem(path, "not a FHIR resource: no resourceType", nil, false))
			continue
		}
		if len(kept) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"resource":`)
		b.Write(it.raw)
		req := struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		}{http.MethodPut, h.ResourceType + "/" + h.ID}
		if h.ID == "" {
			req = struct {
				Method string `json:"method"`
				URL    string `json:"url"`
			}{http.MethodPost, h.ResourceType}
		}
		rb, _ := json.Marshal(req) // strings only: cannot fail
		b.WriteString(`,"request":`)
		b.Write(rb)
		b.WriteByte('}')
		kept = append(kept, it)
	}
	b.WriteString(`]}`)
	if len(kept) == 0 {
		return r
	}
	body := b.Bytes()
	r.merge(l.runBundle(ctx, path, body, true, kept, prepared))
	return r
}

// runBundle runs a batch or transaction Bundle and accounts for every
// entry. items, when set, says where each entry came from (a Bundle built
// by loadResources): such a Bundle is run again as a batch when it fails
// as a whole, since its entries are independent.
func (l *loader) runBundle(ctx context.Context, path string, body []byte, skipInvalid bool, items []item, prepared func()) *result {
	r := &result{}
	where := func(i int) item {
		if items != nil && i >= 0 && i < len(items) {
			return items[i]
		}
		return item{entry: i}
	}
	out, err := l.cfg.Bundles.Run(ctx, body, bundle.Options{SkipInvalid: skipInvalid, Prepared: prepared})
	if err != nil && items != nil && ctx.Err() == nil {
		body = bytes.Replace(body, []byte(`"type":"transaction"`), []byte(`"type":"batch"`), 1)
		out, err = l.cfg.Bundles.Run(ctx, body, bundle.Options{})
	}
	if err != nil {
		entry := -1
		if ee, ok := errors.AsType[*bundle.EntryError](err); ok {
			entry = ee.Index
		}
		r.failed = len(out.Methods)
		r.problems = append(r.problems, where(entry).problem(path, message(err), paths(err), false))
		_, r.noMatch = errors.AsType[*bundle.NoMatchError](err)
		r.noMatch = r.noMatch && items == nil
		return r
	}
	for i, res := range out.Results {
		if e := out.Errs[i]; e != nil {
			r.failed++
			// Resources of their own (items) are independent: leaving one
			// out is not skipping part of the file's transaction.
			r.problems = append(r.problems, where(i).problem(path, message(e), paths(e), out.Kind == "transaction" && items == nil))
			continue
		}
		if res == nil {
			continue
		}
		switch {
		case res.Status == http.StatusCreated:
			r.created++
		case res.Status == http.StatusNoContent:
			r.deleted++
		case res.Status == http.StatusOK && out.Methods[i] == http.MethodPost:
			r.unchanged++
		case res.Status == http.StatusOK && (out.Methods[i] == http.MethodPut || out.Methods[i] == http.MethodPatch):
			r.updated++
		}
	}
	return r
}

// message is the error as a client would read it: an internal error's
// detail too, since the person running the import owns the database.
func message(err error) string {
	if fhir.ErrorCode(err) == fhir.Internal {
		return "internal error: " + err.Error()
	}
	issues := fhir.OutcomeIssues(err)
	msgs := make([]string, 0, len(issues))
	for _, is := range issues {
		// Where the entry is, Problem says (Entry, Line).
		msgs = append(msgs, entryPrefix.ReplaceAllString(is.Diagnostics, ""))
	}
	return strings.Join(msgs, "; ")
}

var entryPrefix = regexp.MustCompile(`^Bundle\.entry\[\d+\]: `)

// paths lists the elements the error's issues name.
func paths(err error) []string {
	if fhir.ErrorCode(err) == fhir.Internal {
		return nil
	}
	var ps []string
	for _, is := range fhir.OutcomeIssues(err) {
		ps = append(ps, is.Expression...)
	}
	return ps
}
