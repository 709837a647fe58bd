-- Index tables clustered by resource (WITHOUT ROWID, sqlite.org/withoutrowid.html).
-- Each table was a rowid B-tree with two indexes beside it: the value index
-- (type, param, value…, rid), where searches start, and the rid index
-- (rid, param, value…), for the probes of a search's other conditions and
-- for replacing a resource's rows. Keyed by its rid columns, the table is
-- the rid index: every index row is written to two B-trees instead of
-- three (synthea-120 import: 2,700 → 3,100 resources/s, 575 → 491 MB).
-- The key holds every column but type (one per rid): search.Index never
-- gives a resource two equal rows (it drops repeats), and rows left from
-- before that cannot conflict here because they are copied with OR IGNORE.
-- The value index entries carry the key's columns as well, so they still
-- cover the searches that start there (string :exact included).

CREATE TABLE search_token_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL,
	PRIMARY KEY (rid, param, code, system, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_token_new (rid, type, param, grp, system, code) SELECT rid, type, param, grp, system, code FROM search_token;
DROP TABLE search_token;
ALTER TABLE search_token_new RENAME TO search_token;
CREATE INDEX search_token_value ON search_token (type, param, code, system, rid);

CREATE TABLE search_string_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	norm TEXT NOT NULL,
	exact TEXT NOT NULL,
	PRIMARY KEY (rid, param, norm, exact, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_string_new (rid, type, param, grp, norm, exact) SELECT rid, type, param, grp, norm, exact FROM search_string;
DROP TABLE search_string;
ALTER TABLE search_string_new RENAME TO search_string;
CREATE INDEX search_string_value ON search_string (type, param, norm, rid);

CREATE TABLE search_date_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	low INTEGER NOT NULL,
	high INTEGER NOT NULL,
	PRIMARY KEY (rid, param, low, high, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_date_new (rid, type, param, grp, low, high) SELECT rid, type, param, grp, low, high FROM search_date;
DROP TABLE search_date;
ALTER TABLE search_date_new RENAME TO search_date;
CREATE INDEX search_date_value ON search_date (type, param, low, high, rid);

CREATE TABLE search_reference_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	target_type TEXT NOT NULL,
	target_id TEXT NOT NULL,
	url TEXT NOT NULL,
	PRIMARY KEY (rid, param, target_id, target_type, url, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_reference_new (rid, type, param, grp, target_type, target_id, url) SELECT rid, type, param, grp, target_type, target_id, url FROM search_reference;
DROP TABLE search_reference;
ALTER TABLE search_reference_new RENAME TO search_reference;
CREATE INDEX search_reference_value ON search_reference (type, param, target_id, target_type, rid);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id, rid);

CREATE TABLE search_quantity_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL,
	PRIMARY KEY (rid, param, code, value, system, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_quantity_new (rid, type, param, grp, value, system, code) SELECT rid, type, param, grp, value, system, code FROM search_quantity;
DROP TABLE search_quantity;
ALTER TABLE search_quantity_new RENAME TO search_quantity;
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value, rid);

CREATE TABLE search_number_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL,
	PRIMARY KEY (rid, param, value, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_number_new (rid, type, param, grp, value) SELECT rid, type, param, grp, value FROM search_number;
DROP TABLE search_number;
ALTER TABLE search_number_new RENAME TO search_number;
CREATE INDEX search_number_value ON search_number (type, param, value, rid);

CREATE TABLE search_uri_new (
	rid INTEGER NOT NULL,
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (rid, param, value, grp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_uri_new (rid, type, param, grp, value) SELECT rid, type, param, grp, value FROM search_uri;
DROP TABLE search_uri;
ALTER TABLE search_uri_new RENAME TO search_uri;
CREATE INDEX search_uri_value ON search_uri (type, param, value, rid);

CREATE TABLE search_compartment_new (
	rid INTEGER NOT NULL,
	patient_id TEXT NOT NULL,
	PRIMARY KEY (rid, patient_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO search_compartment_new (rid, patient_id) SELECT rid, patient_id FROM search_compartment;
DROP TABLE search_compartment;
ALTER TABLE search_compartment_new RENAME TO search_compartment;
CREATE INDEX search_compartment_patient ON search_compartment (patient_id, rid);
