-- Covering search indexes. A search starts from one index, (type, param,
-- value…), and needs the rid of each match; it then probes candidates'
-- other conditions through the rid index, (rid, …). With the rid and the
-- values inside the index entries, neither needs the table row: the
-- Observation?patient=X&category=laboratory search read a table row for
-- every token of every candidate (half its time). Probes no longer test
-- the type (a rid has one), so the rid indexes need not hold it.
DROP INDEX search_token_value;
DROP INDEX search_token_rid;
CREATE INDEX search_token_value ON search_token (type, param, code, system, rid);
CREATE INDEX search_token_rid ON search_token (rid, param, code, system);

DROP INDEX search_string_value;
DROP INDEX search_string_rid;
CREATE INDEX search_string_value ON search_string (type, param, norm, rid);
CREATE INDEX search_string_rid ON search_string (rid, param, norm);

DROP INDEX search_date_value;
DROP INDEX search_date_rid;
CREATE INDEX search_date_value ON search_date (type, param, low, high, rid);
CREATE INDEX search_date_rid ON search_date (rid, param, low, high);

DROP INDEX search_reference_value;
DROP INDEX search_reference_target;
DROP INDEX search_reference_rid;
CREATE INDEX search_reference_value ON search_reference (type, param, target_id, target_type, rid);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id, rid);
CREATE INDEX search_reference_rid ON search_reference (rid, param, target_id, target_type);

DROP INDEX search_quantity_value;
DROP INDEX search_quantity_rid;
CREATE INDEX search_quantity_value ON search_quantity (type, param, code, value, rid);
CREATE INDEX search_quantity_rid ON search_quantity (rid, param, code, value);

DROP INDEX search_number_value;
DROP INDEX search_number_rid;
CREATE INDEX search_number_value ON search_number (type, param, value, rid);
CREATE INDEX search_number_rid ON search_number (rid, param, value);

DROP INDEX search_uri_value;
DROP INDEX search_uri_rid;
CREATE INDEX search_uri_value ON search_uri (type, param, value, rid);
CREATE INDEX search_uri_rid ON search_uri (rid, param, value);

DROP INDEX search_compartment_rid;
CREATE INDEX search_compartment_rid ON search_compartment (rid, patient_id);
