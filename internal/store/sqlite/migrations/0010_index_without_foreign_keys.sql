-- Index rows without foreign keys. Every index row referenced
-- resources (rid), so every INSERT of one looked its resource up, and a
-- multi-row INSERT that could fail on that check needed a statement
-- journal copy of every page it changed. Index rows are derived data that
-- only the store writes, in the unit of work that writes their resource's
-- row, so the check guarded nothing the code does not. SQLite cannot drop
-- a constraint: each table is rebuilt with its rows and indexes (the
-- covering ones of migration 0009). resource_versions keeps its key.

CREATE TABLE search_token_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL
);
INSERT INTO search_token_new (rid, type, param, grp, system, code) SELECT rid, type, param, grp, system, code FROM search_token;
DROP TABLE search_token;
ALTER TABLE search_token_new RENAME TO search_token;
CREATE INDEX search_token_value ON search_token (type, param, code, system, rid);
CREATE INDEX search_token_rid ON search_token (rid, param, code, system);

CREATE TABLE search_string_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	norm TEXT NOT NULL,
	exact TEXT NOT NULL
);
INSERT INTO search_string_new (rid, type, param, grp, norm, exact) SELECT rid, type, param, grp, norm, exact FROM search_string;
DROP TABLE search_string;
ALTER TABLE search_string_new RENAME TO search_string;
CREATE INDEX search_string_value ON search_string (type, param, norm, rid);
CREATE INDEX search_string_rid ON search_string (rid, param, norm);

CREATE TABLE search_date_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	low INTEGER NOT NULL,
	high INTEGER NOT NULL
);
INSERT INTO search_date_new (rid, type, param, grp, low, high) SELECT rid, type, param, grp, low, high FROM search_date;
DROP TABLE search_date;
ALTER TABLE search_date_new RENAME TO search_date;
CREATE INDEX search_date_value ON search_date (type, param, low, high, rid);
CREATE INDEX search_date_rid ON search_date (rid, param, low, high);

CREATE TABLE search_reference_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	target_type TEXT NOT NULL,
	target_id TEXT NOT NULL,
	url TEXT NOT NULL
);
INSERT INTO search_reference_new (rid, type, param, grp, target_type, target_id, url) SELECT rid, type, param, grp, target_type, target_id, url FROM search_reference;
DROP TABLE search_reference;
ALTER TABLE search_reference_new RENAME TO search_reference;
CREATE INDEX search_reference_value ON search_reference (type, param, target_id, target_type, rid);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id, rid);
CREATE INDEX search_reference_rid ON search_reference (rid, param, target_id, target_type);

CREATE TABLE search_quantity_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL
);
INSERT INTO search_quantity_new (rid, type, param, grp, value, system, code) SELECT rid, type, param, grp, value, system, code FROM search_quantity;
DROP TABLE search_quantity;
ALTER TABLE search_quantity_new RENAME TO search_quantity;
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value, rid);
CREATE INDEX search_quantity_rid ON search_quantity (rid, param, code, value);

CREATE TABLE search_number_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL
);
INSERT INTO search_number_new (rid, type, param, grp, value) SELECT rid, type, param, grp, value FROM search_number;
DROP TABLE search_number;
ALTER TABLE search_number_new RENAME TO search_number;
CREATE INDEX search_number_value ON search_number (type, param, value, rid);
CREATE INDEX search_number_rid ON search_number (rid, param, value);

CREATE TABLE search_uri_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value TEXT NOT NULL
);
INSERT INTO search_uri_new (rid, type, param, grp, value) SELECT rid, type, param, grp, value FROM search_uri;
DROP TABLE search_uri;
ALTER TABLE search_uri_new RENAME TO search_uri;
CREATE INDEX search_uri_value ON search_uri (type, param, value, rid);
CREATE INDEX search_uri_rid ON search_uri (rid, param, value);

CREATE TABLE search_compartment_new (
	rid INTEGER NOT NULL,
	patient_id TEXT NOT NULL
);
INSERT INTO search_compartment_new (rid, patient_id) SELECT rid, patient_id FROM search_compartment;
DROP TABLE search_compartment;
ALTER TABLE search_compartment_new RENAME TO search_compartment;
CREATE INDEX search_compartment_patient ON search_compartment (patient_id, rid);
CREATE INDEX search_compartment_rid ON search_compartment (rid, patient_id);
