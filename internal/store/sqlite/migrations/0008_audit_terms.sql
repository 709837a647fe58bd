-- The audit log moves to a file of its own, attached to every connection
-- as "audit" (sqlite.Open): its commits, several a second under load, no
-- longer make every reader of the resources drop its page cache.
--
-- And a leaner index: per committed batch and search term ('patient:ID',
-- 'client:ID', 'user:NAME', 'fhirUser:Type/id'), one audit_terms row
-- lists the batch's events of that term, instead of one index entry per
-- event and term (four B-tree inserts per event became about one). The
-- database has one writer, so batches never overlap in sequence numbers
-- and a term's rows are disjoint ranges ordered by last_seq. seqs is the
-- ascending list of sequence numbers, space-separated.
CREATE TABLE audit.audit_events (
	seq INTEGER PRIMARY KEY,
	recorded INTEGER NOT NULL,
	interaction TEXT NOT NULL,
	resource_type TEXT NOT NULL,
	resources TEXT NOT NULL,
	query TEXT NOT NULL,
	patients TEXT NOT NULL,
	status INTEGER NOT NULL,
	client_id TEXT NOT NULL,
	username TEXT NOT NULL,
	fhir_user TEXT NOT NULL,
	source TEXT NOT NULL,
	request_id TEXT NOT NULL
);
INSERT INTO audit.audit_events
SELECT seq, recorded, interaction, resource_type, resources, query, patients, status,
	client_id, username, fhir_user, source, request_id
FROM main.audit_events ORDER BY seq;
CREATE INDEX audit.audit_events_recorded ON audit_events (recorded);

CREATE TABLE audit.audit_terms (
	term TEXT NOT NULL,
	last_seq INTEGER NOT NULL,
	first_seq INTEGER NOT NULL,
	seqs TEXT NOT NULL,
	PRIMARY KEY (term, last_seq)
) WITHOUT ROWID;
INSERT INTO audit.audit_terms (term, last_seq, first_seq, seqs)
SELECT 'patient:' || patient_id, seq, seq, CAST(seq AS TEXT) FROM main.audit_patients;
INSERT INTO audit.audit_terms (term, last_seq, first_seq, seqs)
SELECT 'client:' || client_id, seq, seq, CAST(seq AS TEXT) FROM main.audit_events WHERE client_id <> '';
INSERT INTO audit.audit_terms (term, last_seq, first_seq, seqs)
SELECT 'user:' || username, seq, seq, CAST(seq AS TEXT) FROM main.audit_events WHERE username <> '';
INSERT INTO audit.audit_terms (term, last_seq, first_seq, seqs)
SELECT 'fhirUser:' || fhir_user, seq, seq, CAST(seq AS TEXT) FROM main.audit_events WHERE fhir_user <> '';

DROP TABLE main.audit_patients;
DROP TABLE main.audit_events;

-- Append-only: the log is evidence, so the database itself refuses to
-- change or remove a record.
CREATE TRIGGER audit.audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit.audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit.audit_terms_no_update BEFORE UPDATE ON audit_terms
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit.audit_terms_no_delete BEFORE DELETE ON audit_terms
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
