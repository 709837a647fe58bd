-- Audit events stored in blocks (internal/store/sqlstore, AuditStore): one
-- audit_blocks row holds up to 256 consecutive events as a JSON array of
-- arrays, in the column order of audit_events, with the block's sequence
-- and time ranges. Appending an event no longer costs a row and a time
-- index entry of its own, which were a tenth of the server's work on reads
-- by id. Blocks never overlap: the database has one writer and each batch
-- follows the largest sequence number stored. audit_terms is unchanged.
CREATE TABLE audit.audit_blocks (
	first_seq INTEGER PRIMARY KEY,
	last_seq INTEGER NOT NULL,
	first_recorded INTEGER NOT NULL,
	last_recorded INTEGER NOT NULL,
	events TEXT NOT NULL
);
CREATE INDEX audit.audit_blocks_last_recorded ON audit_blocks (last_recorded);

INSERT INTO audit.audit_blocks (first_seq, last_seq, first_recorded, last_recorded, events)
SELECT MIN(seq), MAX(seq), MIN(recorded), MAX(recorded),
	json_group_array(json_array(seq, recorded, interaction, resource_type, resources, query, patients,
		status, client_id, username, fhir_user, source, request_id) ORDER BY seq)
FROM audit.audit_events GROUP BY seq / 256;

DROP TABLE audit.audit_events;

-- Append-only: the log is evidence, so the database itself refuses to
-- change or remove a record.
CREATE TRIGGER audit.audit_blocks_no_update BEFORE UPDATE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit.audit_blocks_no_delete BEFORE DELETE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
