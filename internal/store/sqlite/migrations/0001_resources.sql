-- Every version of every resource (append-only) and, per resource, the
-- pointer to its current version. rid is the compact key that index tables
-- use. Instants are microseconds since the Unix epoch.
CREATE TABLE resources (
	rid INTEGER PRIMARY KEY,
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version_id INTEGER NOT NULL,
	last_updated INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	UNIQUE (type, id)
);

-- AUTOINCREMENT: seq must never be reused, even after a purge, because
-- history cursors are keyed on it.
CREATE TABLE resource_versions (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	rid INTEGER NOT NULL REFERENCES resources (rid),
	type TEXT NOT NULL,
	id TEXT NOT NULL,
	version_id INTEGER NOT NULL,
	last_updated INTEGER NOT NULL,
	deleted INTEGER NOT NULL,
	method TEXT NOT NULL,
	body BLOB,
	UNIQUE (rid, version_id)
);

CREATE INDEX resource_versions_rid_seq ON resource_versions (rid, seq);
CREATE INDEX resource_versions_type_seq ON resource_versions (type, seq);
CREATE INDEX resource_versions_last_updated ON resource_versions (last_updated);
