-- Audit events stored in blocks (internal/store/sqlstore, AuditStore): one
-- audit_blocks row holds up to 256 consecutive events as a JSON array of
-- arrays, in the column order of audit_events, with the block's sequence
-- and time ranges. Appending an event no longer costs a row and a time
-- index entry of its own. Blocks never overlap: writers take the audit
-- advisory lock before reserving sequence numbers from audit_seq. (Number
-- 11 is SQLite's alone.) audit_terms is unchanged.
CREATE TABLE audit_blocks (
	first_seq BIGINT PRIMARY KEY,
	last_seq BIGINT NOT NULL,
	first_recorded BIGINT NOT NULL,
	last_recorded BIGINT NOT NULL,
	events TEXT NOT NULL
);
CREATE INDEX audit_blocks_last_recorded ON audit_blocks (last_recorded);

INSERT INTO audit_blocks (first_seq, last_seq, first_recorded, last_recorded, events)
SELECT MIN(seq), MAX(seq), MIN(recorded), MAX(recorded),
	json_agg(json_build_array(seq, recorded, interaction, resource_type, resources, query, patients,
		status, client_id, username, fhir_user, source, request_id) ORDER BY seq)::text
FROM audit_events GROUP BY seq / 256;

DROP TABLE audit_events;

CREATE TRIGGER audit_blocks_append_only BEFORE UPDATE OR DELETE ON audit_blocks
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_blocks_no_truncate BEFORE TRUNCATE ON audit_blocks
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
