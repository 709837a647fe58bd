-- Search indexes (DESIGN.md §5): one table per parameter type, a row per
-- value of a search parameter of the current version of a resource, keyed
-- by the resource's rid. type is the resource's type and param the
-- parameter code, so that a lookup starts from (type, param, value); grp
-- numbers the values of a composite parameter. Rows are rewritten in the
-- unit of work that writes the resource (sqlstore Tx.Put).
CREATE TABLE search_token (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL
);
CREATE INDEX search_token_value ON search_token (type, param, code, system);
CREATE INDEX search_token_rid ON search_token (rid);

CREATE TABLE search_string (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	norm TEXT NOT NULL,
	exact TEXT NOT NULL
);
CREATE INDEX search_string_value ON search_string (type, param, norm);
CREATE INDEX search_string_rid ON search_string (rid);

-- [low, high) in microseconds since the epoch; open ends are the extreme
-- int64 values.
CREATE TABLE search_date (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	low INTEGER NOT NULL,
	high INTEGER NOT NULL
);
CREATE INDEX search_date_value ON search_date (type, param, low, high);
CREATE INDEX search_date_rid ON search_date (rid);

CREATE TABLE search_reference (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	target_type TEXT NOT NULL,
	target_id TEXT NOT NULL,
	url TEXT NOT NULL
);
CREATE INDEX search_reference_value ON search_reference (type, param, target_id, target_type);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id);
CREATE INDEX search_reference_rid ON search_reference (rid);

CREATE TABLE search_quantity (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL,
	system TEXT NOT NULL,
	code TEXT NOT NULL
);
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value);
CREATE INDEX search_quantity_rid ON search_quantity (rid);

CREATE TABLE search_number (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value REAL NOT NULL
);
CREATE INDEX search_number_value ON search_number (type, param, value);
CREATE INDEX search_number_rid ON search_number (rid);

CREATE TABLE search_uri (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	param TEXT NOT NULL,
	grp INTEGER NOT NULL,
	value TEXT NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (type, param, value);
CREATE INDEX search_uri_rid ON search_uri (rid);

-- Which patients' compartments each resource is in.
CREATE TABLE search_compartment (
	rid INTEGER NOT NULL REFERENCES resources (rid),
	patient_id TEXT NOT NULL
);
CREATE INDEX search_compartment_patient ON search_compartment (patient_id, rid);
CREATE INDEX search_compartment_rid ON search_compartment (rid);

-- The fingerprint of the parameter set the indexes were built with; a
-- different one at start means re-indexing (sqlstore DB.Reindex).
CREATE TABLE search_state (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
