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
	"unicode/utf8"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
)

// AuditStore is the audit log's tables (internal/audit): append-only
// blocks of events (audit_blocks: up to auditBlockEvents consecutive
// events encoded as one JSON array, with their sequence and time ranges)
// and a search index (audit_terms: per committed batch and term, the list
// of its events' sequence numbers). A block is one row, so appending an
// event costs encoding it rather than a row and an index entry of its
// own; before blocks, the log's inserts were a tenth of the server's work
// on reads by id (docs/benchmarks.md). Searches decode the blocks they
// touch and apply their conditions to the events.
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

// The prefixes of audit_terms.term.
const (
	termPatient  = "patient:"
	termClient   = "client:"
	termUser     = "user:"
	termFHIRUser = "fhirUser:"
)

// Append stores events in one unit of work. Their sequence numbers come
// from the dialect's ReserveSeq (a PostgreSQL sequence, under AuditLock so
// that concurrent writers' batches do not interleave) or, on a database
// with a single writer, follow the largest stored.
func (s *AuditStore) Append(ctx context.Context, events []audit.Event) (err error) {
	defer wrap(&err, "audit.Append(%d events)", len(events))
	if len(events) == 0 {
		return nil
	}
	return s.db.TransactSQL(ctx, func(ctx context.Context, tx *Tx) error {
		seqs, err := s.reserve(ctx, tx, len(events))
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
		return s.appendTerms(ctx, tx, events, seqs)
	})
}

// appendTerms writes the batch's audit_terms rows: for each term, the
// ascending list of its events' sequence numbers.
func (s *AuditStore) appendTerms(ctx context.Context, tx *Tx, events []audit.Event, seqs []int64) error {
	terms := map[string][]int64{}
	var order []string // terms in first-seen order, for a stable insert
	add := func(prefix, v string, seq int64) {
		if v == "" {
			return
		}
		t := prefix + v
		if _, ok := terms[t]; !ok {
			order = append(order, t)
		}
		terms[t] = append(terms[t], seq)
	}
	for i, e := range events {
		for _, p := range e.Patients {
			add(termPatient, p, seqs[i])
		}
		add(termClient, e.ClientID, seqs[i])
		add(termUser, e.Username, seqs[i])
		add(termFHIRUser, e.FHIRUser, seqs[i])
	}
	for start := 0; start < len(order); start += auditTermRows {
		chunk := order[start:min(start+auditTermRows, len(order))]
		q := s.db.d.AppendInsert + " INTO audit_terms (term, last_seq, first_seq, seqs) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(chunk)), ",")
		args := make([]any, 0, 4*len(chunk))
		for _, t := range chunk {
			list := terms[t]
			var b []byte
			for i, seq := range list {
				if i > 0 {
					b = append(b, ' ')
				}
				b = strconv.AppendInt(b, seq, 10)
			}
			args = append(args, t, list[len(list)-1], list[0], string(b))
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
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
// greater than any another writer holds.
func (s *AuditStore) reserve(ctx context.Context, tx *Tx, n int) ([]int64, error) {
	seqs := make([]int64, 0, n)
	if q := s.db.d.ReserveSeq; q != "" {
		if l := s.db.d.AuditLock; l != "" {
			if _, err := tx.Exec(ctx, l); err != nil {
				return nil, fmt.Errorf("locking the audit log: %w", err)
			}
		}
		rows, err := tx.Query(ctx, q, n)
		if err != nil {
			return nil, fmt.Errorf("reserving audit sequence numbers: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				return nil, err
			}
			seqs = append(seqs, seq)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(seqs) != n {
			return nil, fmt.Errorf("reserving audit sequence numbers: got %d of %d", len(seqs), n)
		}
		slices.Sort(seqs)
		return seqs, nil
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT COALESCE((SELECT last_seq FROM audit_blocks ORDER BY first_seq DESC LIMIT 1), 0)", nil, &last); err != nil {
		return nil, err
	}
	for i := range n {
		seqs = append(seqs, last+1+int64(i))
	}
	return seqs, nil
}

// Search returns the events matching q, newest first. A patient, else an
// agent, else a fhirUser drives the query through audit_terms: the
// matching sequence numbers are read newest first and the blocks holding
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
			blocks, err := s.blocks(ctx, "first_seq < ? AND last_recorded >= ? AND first_recorded < ? ORDER BY first_seq DESC LIMIT ?",
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

// blocks decodes the audit_blocks rows matching where.
func (s *AuditStore) blocks(ctx context.Context, where string, args ...any) ([]*auditBlock, error) {
	rows, err := s.db.Query(ctx, "SELECT first_seq, last_seq, events FROM audit_blocks WHERE "+where, args...)
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
	blocks, err := s.blocks(ctx, "first_seq <= ? ORDER BY first_seq DESC LIMIT 1", seq)
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
