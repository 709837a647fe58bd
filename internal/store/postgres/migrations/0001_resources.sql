-- Every version of every resource (append-only) and, per resource, the
-- pointer to its current version. rid is the compact key that index tables
-- use. Instants are microseconds since the Unix epoch.
CREATE TABLE resources (
	rid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version_id BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted BOOLEAN NOT NULL,
	UNIQUE (type, id)
);

CREATE TABLE resource_versions (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	rid BIGINT NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version_id BIGINT NOT NULL,
	last_updated BIGINT NOT NULL,
	deleted BOOLEAN NOT NULL,
	method TEXT NOT NULL,
	body BYTEA,
	UNIQUE (rid, version_id)
);

CREATE INDEX resource_versions_rid_seq ON resource_versions (rid, seq);
CREATE INDEX resource_versions_type_seq ON resource_versions (type, seq);
CREATE INDEX resource_versions_last_updated ON resource_versions (last_updated);
