-- The audit log (internal/audit): one row per access to patient data.
-- seq orders the log and is the AuditEvent id; recorded is microseconds
-- since the Unix epoch; resources and patients are space-separated lists.
CREATE TABLE audit_events (
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

CREATE INDEX audit_events_recorded ON audit_events (recorded);
CREATE INDEX audit_events_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_username ON audit_events (username, seq);
CREATE INDEX audit_events_fhir_user ON audit_events (fhir_user, seq);

-- Which patients' data each event touched: AuditEvent?patient=.
CREATE TABLE audit_patients (
	patient_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	PRIMARY KEY (patient_id, seq)
) WITHOUT ROWID;

-- Append-only: the log is evidence, so the database itself refuses to
-- change or remove a record.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_patients_no_update BEFORE UPDATE ON audit_patients
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_patients_no_delete BEFORE DELETE ON audit_patients
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
