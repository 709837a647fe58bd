package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
)

// AuditStore is the audit log's tables (internal/audit): append-only
// events, indexed by time (audit_events.recorded) and by search term
// (audit_terms: per committed batch and term, the list of its events'
// sequence numbers — one row per term and batch rather than one index
// entry per event and term, which made the log's writes a fifth of the
// server's work on reads by id).
type AuditStore struct{ db *DB }

var _ audit.Store = (*AuditStore)(nil)

// Audit returns the audit log on db.
func (db *DB) Audit() *AuditStore { return &AuditStore{db: db} }

const auditCols = `seq, recorded, interaction, resource_type, resources, query, patients, status, client_id, username, fhir_user, source, request_id`

// auditRows is how many events one INSERT carries (13 parameters each,
// well under both databases' limits).
const auditRows = 200

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
		for start := 0; start < len(events); start += auditRows {
			chunk := events[start:min(start+auditRows, len(events))]
			var b strings.Builder
			b.WriteString("INSERT INTO audit_events (" + auditCols + ") VALUES ")
			args := make([]any, 0, 13*len(chunk))
			for i, e := range chunk {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
				seq := seqs[start+i]
				args = append(args, seq, toMicro(e.Time), e.Interaction, e.Type,
					strings.Join(e.Resources, " "), e.Query, strings.Join(e.Patients, " "),
					e.Status, e.ClientID, e.Username, e.FHIRUser, e.Source, e.RequestID)
				for _, p := range e.Patients {
					add(termPatient, p, seq)
				}
				add(termClient, e.ClientID, seq)
				add(termUser, e.Username, seq)
				add(termFHIRUser, e.FHIRUser, seq)
			}
			if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
				return err
			}
		}
		for start := 0; start < len(order); start += auditRows {
			chunk := order[start:min(start+auditRows, len(order))]
			q := "INSERT INTO audit_terms (term, last_seq, first_seq, seqs) VALUES " +
				strings.TrimSuffix(strings.Repeat("(?,?,?,?),", len(chunk)), ",")
			args := make([]any, 0, 4*len(chunk))
			for _, t := range chunk {
				list := terms[t]
				var b strings.Builder
				for i, seq := range list {
					if i > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(strconv.FormatInt(seq, 10))
				}
				args = append(args, t, list[len(list)-1], list[0], b.String())
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
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
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_events", nil, &last); err != nil {
		return nil, err
	}
	for i := range n {
		seqs = append(seqs, last+1+int64(i))
	}
	return seqs, nil
}

// Search returns the events matching q, newest first. A patient, else an
// agent, else a fhirUser drives the query through audit_terms: the
// matching sequence numbers are read newest first and their events
// fetched a chunk at a time with the other conditions. Without one, the
// sequence order drives, narrowed by the time index.
func (s *AuditStore) Search(ctx context.Context, q audit.Query) (_ []audit.Stored, err error) {
	defer wrap(&err, "audit.Search")
	count := max(q.Count, 1)
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	var terms []string
	where, args := []string{"seq < ?"}, []any{before}
	switch {
	case q.Patient != "":
		terms = []string{termPatient + q.Patient}
	case q.Agent != "":
		terms = []string{termClient + q.Agent, termUser + q.Agent}
	case q.FHIRUser != "":
		terms = []string{termFHIRUser + q.FHIRUser}
	}
	if q.FHIRUser != "" && q.Patient+q.Agent != "" {
		where = append(where, "fhir_user = ?")
		args = append(args, q.FHIRUser)
	}
	if q.Agent != "" && q.Patient != "" {
		where = append(where, "(client_id = ? OR username = ?)")
		args = append(args, q.Agent, q.Agent)
	}
	if len(q.Interactions) > 0 {
		where = append(where, "interaction IN ("+placeholders(len(q.Interactions))+")")
		for _, i := range q.Interactions {
			args = append(args, i)
		}
	}
	if !q.From.IsZero() {
		where = append(where, "recorded >= ?")
		args = append(args, toMicro(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "recorded < ?")
		args = append(args, ceilMicro(q.To))
	}
	query := "SELECT " + auditCols + " FROM audit_events WHERE " + strings.Join(where, " AND ")
	if len(terms) == 0 {
		return s.scan(ctx, query+" ORDER BY seq DESC LIMIT ?", append(args, count)...)
	}
	streams := make([]*termStream, len(terms))
	for i, t := range terms {
		streams[i] = &termStream{s: s, term: t, before: before}
	}
	var out []audit.Stored
	for len(out) < count {
		// Twice what is missing, as the other conditions may drop some.
		chunk, err := mergeNext(ctx, streams, min(max(2*(count-len(out)), 32), 500))
		if err != nil {
			return nil, err
		}
		if len(chunk) == 0 {
			break
		}
		cargs := append(slices.Clip(args), make([]any, 0, len(chunk))...)
		for _, seq := range chunk {
			cargs = append(cargs, seq)
		}
		found, err := s.scan(ctx, query+" AND seq IN ("+placeholders(len(chunk))+") ORDER BY seq DESC", cargs...)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out[:min(len(out), count)], nil
}

// scan runs an audit_events query.
func (s *AuditStore) scan(ctx context.Context, query string, args ...any) ([]audit.Stored, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Stored
	for rows.Next() {
		e, err := scanAudit(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
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
func (s *AuditStore) Get(ctx context.Context, seq int64) (*audit.Stored, error) {
	row, err := s.db.Query(ctx, "SELECT "+auditCols+" FROM audit_events WHERE seq = ?", seq)
	if err != nil {
		return nil, fmt.Errorf("audit.Get: %w", err)
	}
	defer row.Close()
	if !row.Next() {
		if err := row.Err(); err != nil {
			return nil, fmt.Errorf("audit.Get: %w", err)
		}
		return nil, fhir.Errorf(fhir.NotFound, "AuditEvent/%d does not exist", seq)
	}
	return scanAudit(row.Scan)
}

func scanAudit(scan func(dest ...any) error) (*audit.Stored, error) {
	var s audit.Stored
	var recorded int64
	var resources, patients string
	if err := scan(&s.Seq, &recorded, &s.Interaction, &s.Type, &resources, &s.Query, &patients,
		&s.Status, &s.ClientID, &s.Username, &s.FHIRUser, &s.Source, &s.RequestID); err != nil {
		if errors.Is(err, ErrNoRows) {
			return nil, fhir.Errorf(fhir.NotFound, "no such AuditEvent")
		}
		return nil, err
	}
	s.Time = fromMicro(recorded)
	s.Resources = strings.Fields(resources)
	s.Patients = strings.Fields(patients)
	return &s, nil
}
