-- A leaner audit index (internal/audit). Each batch the writer commits
-- stores, per search term it touched ('patient:ID', 'client:ID',
-- 'user:NAME', 'fhirUser:Type/id'), one row listing the batch's events of
-- that term, instead of one index entry per event and term: four B-tree
-- inserts per event became about one. Writers take audit_lock's advisory
-- lock before reserving sequence numbers, so batches never overlap and a
-- term's rows are disjoint ranges ordered by last_seq. seqs is the
-- ascending list of sequence numbers, space-separated.
CREATE TABLE audit_terms (
	term TEXT NOT NULL,
	last_seq BIGINT NOT NULL,
	first_seq BIGINT NOT NULL,
	seqs TEXT NOT NULL,
	PRIMARY KEY (term, last_seq)
);

INSERT INTO audit_terms (term, last_seq, first_seq, seqs)
SELECT 'patient:' || patient_id, seq, seq, seq::text FROM audit_patients;
INSERT INTO audit_terms (term, last_seq, first_seq, seqs)
SELECT 'client:' || client_id, seq, seq, seq::text FROM audit_events WHERE client_id <> '';
INSERT INTO audit_terms (term, last_seq, first_seq, seqs)
SELECT 'user:' || username, seq, seq, seq::text FROM audit_events WHERE username <> '';
INSERT INTO audit_terms (term, last_seq, first_seq, seqs)
SELECT 'fhirUser:' || fhir_user, seq, seq, seq::text FROM audit_events WHERE fhir_user <> '';

DROP INDEX audit_events_client;
DROP INDEX audit_events_username;
DROP INDEX audit_events_fhir_user;
DROP TABLE audit_patients;

CREATE TRIGGER audit_terms_append_only BEFORE UPDATE OR DELETE ON audit_terms
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_terms_no_truncate BEFORE TRUNCATE ON audit_terms
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
