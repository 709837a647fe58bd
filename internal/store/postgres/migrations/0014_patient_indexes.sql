-- Index tables by patient (sqlstore/index.go, byPatient). Nearly every
-- search US Core names pairs a patient with a token or a date:
-- Observation?patient=…&category=…, Condition?patient=…&code=…,
-- Encounter?patient=…&date=ge…. The page walked the patient's resources
-- of the type in rid order and probed each for the other condition; for a
-- laboratory page of synthea-120 that is 113 probes to keep 51.
--
-- search_token_patient holds each token of a resource once more for each
-- patient its `patient` parameter names, keyed (pid, patient, code, rid),
-- so that the page is one range in rid order. search_date_patient does the
-- same for dates, keyed (pid, patient, rid): a range of dates is no key to
-- walk in rid order, but the walk compares the dates it reads instead of
-- probing. Composite components ('$' in the parameter) and the :text and
-- :of-type rows are not searched with a patient and are left out.

CREATE TABLE search_token_patient (
	rid BIGINT NOT NULL,
	pid INTEGER NOT NULL,
	patient TEXT COLLATE "C" NOT NULL,
	code TEXT COLLATE "C" NOT NULL,
	system TEXT COLLATE "C" NOT NULL
);

INSERT INTO search_token_patient (rid, pid, patient, code, system)
SELECT DISTINCT t.rid, t.pid, d.target_id, t.code, t.system
FROM search_token t
JOIN search_params tp ON tp.pid = t.pid
JOIN search_params pp ON pp.type = tp.type AND pp.param = 'patient'
JOIN search_reference d ON d.rid = t.rid AND d.pid = pp.pid AND d.target_type = 'Patient' AND d.target_id <> ''
WHERE tp.param NOT LIKE '%$%' AND tp.param NOT LIKE '%:%';

CREATE INDEX search_token_patient_value ON search_token_patient (pid, patient, code, rid, system);
CREATE INDEX search_token_patient_rid ON search_token_patient (rid);

CREATE TABLE search_date_patient (
	rid BIGINT NOT NULL,
	pid INTEGER NOT NULL,
	patient TEXT COLLATE "C" NOT NULL,
	low BIGINT NOT NULL,
	high BIGINT NOT NULL
);

INSERT INTO search_date_patient (rid, pid, patient, low, high)
SELECT DISTINCT t.rid, t.pid, d.target_id, t.low, t.high
FROM search_date t
JOIN search_params tp ON tp.pid = t.pid
JOIN search_params pp ON pp.type = tp.type AND pp.param = 'patient'
JOIN search_reference d ON d.rid = t.rid AND d.pid = pp.pid AND d.target_type = 'Patient' AND d.target_id <> ''
WHERE tp.param NOT LIKE '%$%' AND tp.param NOT LIKE '%:%';

CREATE INDEX search_date_patient_value ON search_date_patient (pid, patient, rid, low, high);
CREATE INDEX search_date_patient_rid ON search_date_patient (rid);
