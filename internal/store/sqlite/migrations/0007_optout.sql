-- Patients who opted out of third-party access (internal/smart): while a
-- patient is listed, no app is authorized for them and their grants stay
-- revoked. created is microseconds since the Unix epoch.
CREATE TABLE auth_optouts (
	patient_id TEXT PRIMARY KEY,
	created BIGINT NOT NULL
);
