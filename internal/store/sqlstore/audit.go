package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"smartfhir/internal/audit"
	"smartfhir/internal/fhir"
)

// AuditStore is the audit log's table (internal/audit): append-only
// events, and which patients each touched.
type AuditStore struct{ db *DB }

var _ audit.Store = (*AuditStore)(nil)

// Audit returns the audit log on db.
func (db *DB) Audit() *AuditStore { return &AuditStore{db: db} }

const auditCols = `seq, recorded, interaction, resource_type, resources, query, patients, status, client_id, username, fhir_user, source, request_id`

// auditRows is how many events one INSERT carries (13 parameters each,
// well under both databases' limits).
const auditRows = 200

// Append stores events in one unit of work. Their sequence numbers come
// from the dialect's ReserveSeq (a PostgreSQL sequence, shared safely by
// replicas) or, on a database with a single writer, follow the largest
// stored one.
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
		var pats []any
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
					pats = append(pats, p, seq)
				}
			}
			if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
				return err
			}
		}
		const perRow = 2
		for start := 0; start < len(pats); start += perRow * auditRows * 4 {
			chunk := pats[start:min(start+perRow*auditRows*4, len(pats))]
			q := "INSERT INTO audit_patients (patient_id, seq) VALUES " +
				strings.TrimSuffix(strings.Repeat("(?,?),", len(chunk)/perRow), ",")
			if _, err := tx.Exec(ctx, q, chunk...); err != nil {
				return err
			}
		}
		return nil
	})
}

// reserve returns n fresh sequence numbers, in increasing order.
func (s *AuditStore) reserve(ctx context.Context, tx *Tx, n int) ([]int64, error) {
	seqs := make([]int64, 0, n)
	if q := s.db.d.ReserveSeq; q != "" {
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

// Search returns the events matching q, newest first. A patient drives
// the query through audit_patients; otherwise the sequence order does,
// narrowed by the agent and time indexes the planner picks.
func (s *AuditStore) Search(ctx context.Context, q audit.Query) (_ []audit.Stored, err error) {
	defer wrap(&err, "audit.Search")
	var where []string
	var args []any
	from := "audit_events e"
	if q.Patient != "" {
		from = "audit_patients p JOIN audit_events e ON e.seq = p.seq"
		where = append(where, "p.patient_id = ?")
		args = append(args, q.Patient)
	}
	if q.FHIRUser != "" {
		where = append(where, "e.fhir_user = ?")
		args = append(args, q.FHIRUser)
	}
	if q.Agent != "" {
		where = append(where, "(e.client_id = ? OR e.username = ?)")
		args = append(args, q.Agent, q.Agent)
	}
	if len(q.Interactions) > 0 {
		where = append(where, "e.interaction IN ("+strings.TrimSuffix(strings.Repeat("?,", len(q.Interactions)), ",")+")")
		for _, i := range q.Interactions {
			args = append(args, i)
		}
	}
	if !q.From.IsZero() {
		where = append(where, "e.recorded >= ?")
		args = append(args, toMicro(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "e.recorded < ?")
		args = append(args, ceilMicro(q.To))
	}
	if q.Before > 0 {
		where = append(where, "e.seq < ?")
		args = append(args, q.Before)
	}
	query := "SELECT " + prefixed("e.", auditCols) + " FROM " + from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY e.seq DESC LIMIT ?"
	args = append(args, max(q.Count, 1))
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

// prefixed qualifies each of a comma-separated column list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = p + c
	}
	return strings.Join(parts, ", ")
}
