package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
)

// AuditStore is the audit log's tables (internal/audit): append-only
// blocks of events (audit_blocks: up to auditBlockEvents consecutive
// events encoded as one JSON array, with their sequence and time ranges)
// and a search index (audit_terms: per segment and term, the list of its
// events' sequence numbers). A block is one row, so appending an event
// costs encoding it rather than a row and an index entry of its own;
// before blocks, the log's inserts were a tenth of the server's work on
// reads by id (docs/benchmarks.md). Searches decode the blocks they touch
// and apply their conditions to the events.
//
// The term index is written in segments. A segment covers the events of
// consecutive batches, at least db.auditTail.segment of them, with one
// row per term, and ends with a marker row (term termSegment, last_seq
// the last event it covers). The events after the last marker, the tail,
// are found by decoding their blocks. A row per batch and term instead
// (five batches a second under load) inserted a row for each patient a
// batch touched into the index's B-tree, one page each: when every page of
// a search names ten patients, that was a quarter of the server's work.
// Blocks stay written at every batch, so an event is as durable as
// before; after each Append the tail holds fewer events than a segment.
type AuditStore struct{ db *DB }

var _ audit.Store = (*AuditStore)(nil)

// Audit returns the audit log on db.
func (db *DB) Audit() *AuditStore { return &AuditStore{db: db} }

// auditBlockEvents and auditBlockBytes bound a block: a search reading
// one event decodes its whole block.
const (
	auditBlockEvents = 256
	auditBlockBytes  = 256 << 10
)

// auditBlockRows is how many blocks one INSERT carries.
const auditBlockRows = 64

// auditTermRows is how many audit_terms rows one INSERT carries (4
// parameters each, well under both databases' limits).
const auditTermRows = 500

// The prefixes of audit_terms.term, and the segment marker's term.
const (
	termPatient  = "patient:"
	termClient   = "client:"
	termUser     = "user:"
	termFHIRUser = "fhirUser:"
	termSegment  = "segment:"
)

// defaultAuditSegment is how many events a segment of the term index
// covers at least: at 5,000 audited requests a second, a segment every
// second or two, and a tail of 32 blocks or so for a search to decode.
const defaultAuditSegment = 8192

// auditTail is the tail as one DB handle last committed it: the terms of
// the events after the segment marker base, up to last. Another handle
// (or process) that appends in between makes it stale, and Append then
// reads the tail back from its blocks.
type auditTail struct {
	segment int // Config.AuditSegmentEvents
	mu      sync.Mutex
	valid   bool
	base    int64              // the last marker's last_seq (0: none)
	last    int64              // the last event of the tail
	events  int                // events in the tail
	terms   map[string][]int64 // term → ascending sequence numbers
}

// Append stores events in one unit of work. Their sequence numbers come
// from the dialect's ReserveSeq (a PostgreSQL sequence, under AuditLock so
// that concurrent writers' batches do not interleave) or, on a database
// with a single writer, follow the largest stored.
func (s *AuditStore) Append(ctx context.Context, events []audit.Event) (err error) {
	defer wrap(&err, "audit.Append(%d events)", len(events))
	if len(events) == 0 {
		return nil
	}
	tail := &s.db.auditTail
	tail.mu.Lock()
	defer tail.mu.Unlock()
	var next tailUpdate
	err = s.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		seqs, prev, err := s.reserve(ctx, tx, len(events))
		if err != nil {
			return err
		}
		var blocks []any // first_seq, last_seq, first_recorded, last_recorded, events
		var enc []byte
		var first int
		var lo, hi int64
		for i, e := range events {
			rec := toMicro(e.Time)
			if i == first {
				enc, lo, hi = append(enc[:0], '['), rec, rec
			} else {
				enc = append(enc, ',')
				lo, hi = min(lo, rec), max(hi, rec)
			}
			enc = appendAuditEvent(enc, seqs[i], rec, &e)
			if i+1 == len(events) || i+1-first == auditBlockEvents || len(enc) >= auditBlockBytes {
				enc = append(enc, ']')
				blocks = append(blocks, seqs[first], seqs[i], lo, hi, string(enc))
				first = i + 1
			}
		}
		for start := 0; start < len(blocks); start += 5 * auditBlockRows {
			chunk := blocks[start:min(start+5*auditBlockRows, len(blocks))]
			q := s.db.d.AppendInsert + " INTO audit_blocks (first_seq, last_seq, first_recorded, last_recorded, events) VALUES " +
				strings.TrimSuffix(strings.Repeat("(?,?,?,?,?),", len(chunk)/5), ",")
			if _, err := tx.Exec(ctx, q, chunk...); err != nil {
				return err
			}
		}
		next, err = s.appendTerms(ctx, tx, events, seqs, prev)
		return err
	})
	if err != nil {
		tail.valid = false // the transaction may have committed after all
		return err
	}
	next.apply(tail)
	return nil
}

// eventTerms adds the terms of event e, sequence number seq, to terms.
func eventTerms(terms map[string][]int64, e *audit.Event, seq int64) {
	add := func(prefix, v string) {
		if v != "" {
			t := prefix + v
			if l := terms[t]; len(l) == 0 || l[len(l)-1] != seq {
				terms[t] = append(l, seq)
			}
		}
	}
	for _, p := range e.Patients {
		add(termPatient, p)
	}
	add(termClient, e.ClientID)
	add(termUser, e.Username)
	add(termFHIRUser, e.FHIRUser)
}

// tailUpdate is what a committed Append does to the handle's auditTail.
type tailUpdate struct {
	base, last int64
	events     int
	terms      map[string][]int64 // the tail's terms before the batch (nil after a segment)
	batch      map[string][]int64 // the batch's terms, to add to them
}

func (u *tailUpdate) apply(t *auditTail) {
	t.valid, t.base, t.last, t.events = true, u.base, u.last, u.events
	t.terms = u.terms
	if t.terms == nil {
		t.terms = map[string][]int64{}
	}
	for term, seqs := range u.batch {
		t.terms[term] = append(t.terms[term], seqs...)
	}
}

// appendTerms indexes the batch of events, sequence numbers seqs, after
// prev, the last event stored before them (when it is the last of the
// handle's tail, no other writer came in between). It writes a segment of
// the term index when the tail and the batch hold enough events, and
// otherwise leaves the batch in the tail. It returns what the handle's
// tail becomes once the unit of work commits; it does not change it, since
// the unit may run again or roll back.
func (s *AuditStore) appendTerms(ctx context.Context, tx *Tx, events []audit.Event, seqs []int64, prev int64) (tailUpdate, error) {
	tail := &s.db.auditTail
	base, err := auditWatermark(ctx, tx)
	if err != nil {
		return tailUpdate{}, err
	}
	// batch is what the unit adds to the tail: the events other writers
	// appended since the handle's last batch, then this batch's.
	terms, count := tail.terms, tail.events
	batch := map[string][]int64{}
	switch {
	case !tail.valid || tail.base != base || tail.last > prev:
		// A segment by another writer, or a tail never read: all of it.
		terms = map[string][]int64{}
		if count, err = s.readTail(ctx, tx, terms, base, seqs[0]); err != nil {
			return tailUpdate{}, err
		}
	case tail.last < prev:
		// Other writers' batches since this handle's last one (another
		// replica, or the CLI): only those.
		n, err := s.readTail(ctx, tx, batch, tail.last, seqs[0])
		if err != nil {
			return tailUpdate{}, err
		}
		count += n
	}
	for i := range events {
		eventTerms(batch, &events[i], seqs[i])
	}
	count += len(events)
	last := seqs[len(seqs)-1]
	if count < tail.segment {
		return tailUpdate{base: base, last: last, events: count, terms: terms, batch: batch}, nil
	}
	// A segment: each term's events of the tail, then of the batch.
	order := make([]string, 0, len(terms)+len(batch))
	for t := range terms {
		order = append(order, t)
	}
	for t := range batch {
		if _, ok := terms[t]; !ok {
			order = append(order, t)
		}
	}
	slices.Sort(order) // the index's order: neighbouring rows, neighbouring pages
	first := base + 1
	rows := make([]any, 0, 4*(len(order)+1))
	var b []byte
	for _, t := range order {
		b = b[:0]
		lo, hi := int64(0), int64(0)
		for _, list := range [2][]int64{terms[t], batch[t]} {
			for _, seq := range list {
				if len(b) > 0 {
					b = append(b, ' ')
				} else {
					lo = seq
				}
				b = strconv.AppendInt(b, seq, 10)
				hi = seq
			}
		}
		rows = append(rows, t, hi, lo, string(b))
	}
	rows = append(rows, termSegment, last, first, "")
	for start := 0; start < len(rows); start += 4 * auditTermRows {
		chunk := rows[start:min(start+4*auditTermRows, len(rows))]
		q := s.db.d.AppendInsert + " INTO audit_terms (term, last_seq, first_seq, seqs) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(chunk)/4), ",")
		if _, err := tx.Exec(ctx, q, chunk...); err != nil {
			return tailUpdate{}, err
		}
	}
	return tailUpdate{base: last, last: last}, nil
}

// afterBlocks selects the blocks of the events after a segment (the first
// two arguments, its last event) and below a sequence number (the third):
// a range of first_seq, starting at the block that holds the segment's
// last event, so that neither the oldest nor the newest blocks are read.
const afterBlocks = `first_seq >= COALESCE((SELECT first_seq FROM audit_blocks WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1), 0)
AND last_seq > ? AND first_seq < ?`

// auditReader is the DB or a unit of work, to read the log through.
type auditReader interface {
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args []any, dest ...any) error
}

// auditWatermark is the last event the term index's segments cover; 0
// when there is no segment.
func auditWatermark(ctx context.Context, q auditReader) (int64, error) {
	var w int64
	err := q.QueryRow(ctx, "SELECT COALESCE((SELECT last_seq FROM audit_terms WHERE term = ? ORDER BY last_seq DESC LIMIT 1), 0)",
		[]any{termSegment}, &w)
	return w, err
}

// readTail adds to terms those of the events after base and before below,
// read back from their blocks, and returns how many there are.
func (s *AuditStore) readTail(ctx context.Context, tx *Tx, terms map[string][]int64, base, below int64) (int, error) {
	blocks, err := s.blocks(ctx, tx, afterBlocks+" ORDER BY first_seq", base, base, below)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range blocks {
		for i := range b.events {
			if e := &b.events[i]; e.Seq > base && e.Seq < below {
				eventTerms(terms, &e.Event, e.Seq)
				n++
			}
		}
	}
	return n, nil
}

// appendAuditEvent appends e as the JSON array a block holds: the columns
// of the table the log had before blocks (migration 0012 builds the same
// arrays with the databases' JSON functions).
func appendAuditEvent(b []byte, seq, recorded int64, e *audit.Event) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, recorded, 10)
	for _, v := range []string{e.Interaction, e.Type} {
		b = appendJSONString(append(b, ','), v)
	}
	b = appendJSONString(append(b, ','), strings.Join(e.Resources, " "))
	b = appendJSONString(append(b, ','), e.Query)
	b = appendJSONString(append(b, ','), strings.Join(e.Patients, " "))
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(e.Status), 10)
	for _, v := range []string{e.ClientID, e.Username, e.FHIRUser, e.Source, e.RequestID} {
		b = appendJSONString(append(b, ','), v)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// decodeAuditBlock reads the events of one block, in increasing sequence
// order.
func decodeAuditBlock(data string) ([]audit.Stored, error) {
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	var rows [][]any
	if err := dec.Decode(&rows); err != nil {
		return nil, fmt.Errorf("audit block: %w", err)
	}
	out := make([]audit.Stored, 0, len(rows))
	for _, r := range rows {
		var st audit.Stored
		var recorded, status int64
		var resources, patients string
		// In appendAuditEvent's order.
		fields := [...]any{&st.Seq, &recorded, &st.Interaction, &st.Type, &resources, &st.Query, &patients,
			&status, &st.ClientID, &st.Username, &st.FHIRUser, &st.Source, &st.RequestID}
		if len(r) != len(fields) {
			return nil, fmt.Errorf("audit block: an event of %d fields, want %d", len(r), len(fields))
		}
		for i, v := range r {
			ok := false
			switch p := fields[i].(type) {
			case *int64:
				var n json.Number
				if n, ok = v.(json.Number); ok {
					var err error
					if *p, err = n.Int64(); err != nil {
						return nil, fmt.Errorf("audit block: field %d: %w", i, err)
					}
				}
			case *string:
				*p, ok = v.(string)
			}
			if !ok {
				return nil, fmt.Errorf("audit block: field %d is %T", i, v)
			}
		}
		st.Time = fromMicro(recorded)
		st.Status = int(status)
		st.Resources = strings.Fields(resources)
		st.Patients = strings.Fields(patients)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b audit.Stored) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// reserve returns n fresh sequence numbers, in increasing order, all
// greater than any another writer holds, and the last event stored before
// them (0 when there is none).
func (s *AuditStore) reserve(ctx context.Context, tx *Tx, n int) (seqs []int64, prev int64, err error) {
	// The block stored last: under the dialect's AuditLock, or with a
	// single writer, no other writer's block can follow it before ours.
	lastStored := func() error {
		return tx.QueryRow(ctx, "SELECT COALESCE((SELECT last_seq FROM audit_blocks ORDER BY first_seq DESC LIMIT 1), 0)", nil, &prev)
	}
	seqs = make([]int64, 0, n)
	if q := s.db.d.ReserveSeq; q != "" {
		if l := s.db.d.AuditLock; l != "" {
			if _, err := tx.Exec(ctx, l); err != nil {
				return nil, 0, fmt.Errorf("locking the audit log: %w", err)
			}
		}
		if err := lastStored(); err != nil {
			return nil, 0, err
		}
		if seqs, err = tx.reserveNumbers(ctx, q, n); err != nil {
			return nil, 0, fmt.Errorf("reserving audit sequence numbers: %w", err)
		}
		return seqs, prev, nil
	}
	if err := lastStored(); err != nil {
		return nil, 0, err
	}
	for i := range n {
		seqs = append(seqs, prev+1+int64(i))
	}
	return seqs, prev, nil
}

// Search returns the events matching q, newest first. A patient, else an
// agent, else a fhirUser drives the query: the blocks after the term
// index's last segment are decoded, then the matching sequence numbers of
// the segments (audit_terms) read newest first and the blocks holding
// them decoded. Without one, the blocks are read newest first, narrowed
// by their time ranges. Every condition is checked on the decoded events.
func (s *AuditStore) Search(ctx context.Context, q audit.Query) (_ []audit.Stored, err error) {
	defer wrap(&err, "audit.Search")
	count := max(q.Count, 1)
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = toMicro(q.From)
	}
	if !q.To.IsZero() {
		to = ceilMicro(q.To)
	}
	keep := func(e *audit.Stored) bool {
		rec := toMicro(e.Time)
		return e.Seq < before && rec >= from && rec < to &&
			(q.Patient == "" || slices.Contains(e.Patients, q.Patient)) &&
			(q.Agent == "" || e.ClientID == q.Agent || e.Username == q.Agent) &&
			(q.FHIRUser == "" || e.FHIRUser == q.FHIRUser) &&
			(len(q.Interactions) == 0 || slices.Contains(q.Interactions, e.Interaction))
	}
	var terms []string
	switch {
	case q.Patient != "":
		terms = []string{termPatient + q.Patient}
	case q.Agent != "":
		terms = []string{termClient + q.Agent, termUser + q.Agent}
	case q.FHIRUser != "":
		terms = []string{termFHIRUser + q.FHIRUser}
	}
	var out []audit.Stored
	if len(terms) == 0 {
		// Blocks newest first, a few at a time; a block's events are
		// in increasing order.
		const blocksPerRead = 4
		for below := before; len(out) < count; {
			blocks, err := s.blocks(ctx, s.db, "first_seq < ? AND last_recorded >= ? AND first_recorded < ? ORDER BY first_seq DESC LIMIT ?",
				below, from, to, blocksPerRead)
			if err != nil {
				return nil, err
			}
			for _, b := range blocks {
				for i := len(b.events) - 1; i >= 0 && len(out) < count; i-- {
					if keep(&b.events[i]) {
						out = append(out, b.events[i])
					}
				}
				below = b.first
			}
			if len(blocks) < blocksPerRead {
				break
			}
		}
		return out, nil
	}
	// The tail first, newest first: its events are the log's newest.
	base, err := auditWatermark(ctx, s.db)
	if err != nil {
		return nil, err
	}
	if before > base+1 {
		blocks, err := s.blocks(ctx, s.db, afterBlocks+" ORDER BY first_seq DESC", base, base, before)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			for i := len(b.events) - 1; i >= 0 && len(out) < count; i-- {
				if e := &b.events[i]; e.Seq > base && keep(e) {
					out = append(out, *e)
				}
			}
		}
		before = base + 1
	}
	streams := make([]*termStream, len(terms))
	for i, t := range terms {
		streams[i] = &termStream{s: s, term: t, before: before}
	}
	var cur *auditBlock
	for len(out) < count {
		// Twice what is missing, as the other conditions may drop some.
		chunk, err := mergeNext(ctx, streams, min(max(2*(count-len(out)), 32), 500))
		if err != nil {
			return nil, err
		}
		if len(chunk) == 0 {
			break
		}
		for _, seq := range chunk {
			if cur == nil || seq < cur.first || seq > cur.last {
				if cur, err = s.blockOf(ctx, seq); err != nil {
					return nil, err
				}
			}
			if e := cur.find(seq); e != nil && keep(e) && len(out) < count {
				out = append(out, *e)
			}
		}
	}
	return out, nil
}

// auditBlock is one decoded audit_blocks row.
type auditBlock struct {
	first, last int64
	events      []audit.Stored // increasing Seq
}

// find returns the block's event seq, nil if it has none.
func (b *auditBlock) find(seq int64) *audit.Stored {
	i, ok := slices.BinarySearchFunc(b.events, seq, func(e audit.Stored, seq int64) int { return cmp.Compare(e.Seq, seq) })
	if !ok {
		return nil
	}
	return &b.events[i]
}

// blocks decodes the audit_blocks rows matching where, read through q (the
// DB or a unit of work).
func (s *AuditStore) blocks(ctx context.Context, q auditReader, where string, args ...any) ([]*auditBlock, error) {
	rows, err := q.Query(ctx, "SELECT first_seq, last_seq, events FROM audit_blocks WHERE "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*auditBlock
	for rows.Next() {
		b := &auditBlock{}
		var data string
		if err := rows.Scan(&b.first, &b.last, &data); err != nil {
			return nil, err
		}
		if b.events, err = decodeAuditBlock(data); err != nil {
			return nil, fmt.Errorf("audit block %d: %w", b.first, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// blockOf returns the block whose range holds seq: an empty one when no
// block does.
func (s *AuditStore) blockOf(ctx context.Context, seq int64) (*auditBlock, error) {
	blocks, err := s.blocks(ctx, s.db, "first_seq <= ? ORDER BY first_seq DESC LIMIT 1", seq)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 || blocks[0].last < seq {
		return &auditBlock{first: seq, last: seq}, nil
	}
	return blocks[0], nil
}

// termStream reads one term's sequence numbers below before, newest
// first, a few audit_terms rows at a time. A term's rows cover disjoint
// ranges, so at most one of them straddles before.
type termStream struct {
	s      *AuditStore
	term   string
	before int64   // rows with last_seq < before are still to read
	buf    []int64 // read and not yet taken, in decreasing order
	begun  bool    // the straddling row was looked for
	done   bool    // nothing left to read
}

// termRows is how many audit_terms rows one read takes.
const termRows = 16

// head returns the stream's next sequence number, reading more rows when
// it has none buffered; false when the stream is exhausted.
func (t *termStream) head(ctx context.Context) (int64, bool, error) {
	for len(t.buf) == 0 && !t.done {
		query := "SELECT last_seq, seqs FROM audit_terms WHERE term = ? AND last_seq < ? ORDER BY last_seq DESC LIMIT ?"
		limit := termRows
		if !t.begun {
			t.begun = true
			query = "SELECT last_seq, seqs FROM audit_terms WHERE term = ? AND last_seq >= ? ORDER BY last_seq LIMIT ?"
			limit = 1
		}
		rows, err := t.s.db.Query(ctx, query, t.term, t.before, limit)
		if err != nil {
			return 0, false, err
		}
		n := 0
		var lowest int64
		for rows.Next() {
			var last int64
			var list string
			if err := rows.Scan(&last, &list); err != nil {
				rows.Close()
				return 0, false, err
			}
			n++
			lowest = last
			seqs := strings.Fields(list)
			for i := len(seqs) - 1; i >= 0; i-- {
				seq, err := strconv.ParseInt(seqs[i], 10, 64)
				if err != nil {
					rows.Close()
					return 0, false, fmt.Errorf("audit_terms %q: %w", t.term, err)
				}
				if seq < t.before {
					t.buf = append(t.buf, seq)
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, false, err
		}
		if limit == 1 {
			continue // the straddler; the rows below before come next
		}
		if n < limit {
			t.done = true
		} else {
			t.before = lowest
		}
	}
	if len(t.buf) == 0 {
		return 0, false, nil
	}
	return t.buf[0], true, nil
}

// mergeNext takes up to n sequence numbers from the streams, newest
// first, each once.
func mergeNext(ctx context.Context, streams []*termStream, n int) ([]int64, error) {
	var out []int64
	for len(out) < n {
		var best *termStream
		var top int64
		for _, st := range streams {
			seq, ok, err := st.head(ctx)
			if err != nil {
				return nil, err
			}
			if ok && (best == nil || seq > top) {
				best, top = st, seq
			}
		}
		if best == nil {
			break
		}
		for _, st := range streams {
			if len(st.buf) > 0 && st.buf[0] == top {
				st.buf = st.buf[1:]
			}
		}
		out = append(out, top)
	}
	return out, nil
}

// Get returns one event by its sequence number.
func (s *AuditStore) Get(ctx context.Context, seq int64) (_ *audit.Stored, err error) {
	defer wrap(&err, "audit.Get")
	b, err := s.blockOf(ctx, seq)
	if err != nil {
		return nil, err
	}
	e := b.find(seq)
	if e == nil {
		return nil, fhir.Errorf(fhir.NotFound, "AuditEvent/%d does not exist", seq)
	}
	return e, nil
}
