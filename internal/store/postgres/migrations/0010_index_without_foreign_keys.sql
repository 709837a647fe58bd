-- Index rows without foreign keys. Every index row referenced
-- resources (rid): PostgreSQL checked each with a trigger that looked the
-- resource up and locked it (SELECT … FOR KEY SHARE), a quarter of an
-- import's time. Index rows are derived data that only the store writes,
-- in the unit of work that writes their resource's row, so the check
-- guarded nothing the code does not. resource_versions keeps its key.
ALTER TABLE search_token DROP CONSTRAINT IF EXISTS search_token_rid_fkey;
ALTER TABLE search_string DROP CONSTRAINT IF EXISTS search_string_rid_fkey;
ALTER TABLE search_date DROP CONSTRAINT IF EXISTS search_date_rid_fkey;
ALTER TABLE search_reference DROP CONSTRAINT IF EXISTS search_reference_rid_fkey;
ALTER TABLE search_quantity DROP CONSTRAINT IF EXISTS search_quantity_rid_fkey;
ALTER TABLE search_number DROP CONSTRAINT IF EXISTS search_number_rid_fkey;
ALTER TABLE search_uri DROP CONSTRAINT IF EXISTS search_uri_rid_fkey;
ALTER TABLE search_compartment DROP CONSTRAINT IF EXISTS search_compartment_rid_fkey;
