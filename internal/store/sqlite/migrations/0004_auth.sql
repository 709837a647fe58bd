-- The authorization server's state (internal/smart). Tokens, codes,
-- launches and sessions are keyed by the SHA-256 of their value; instants
-- are microseconds since the Unix epoch; flags are 0 or 1.
CREATE TABLE auth_clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	secret_hash BLOB NOT NULL,
	redirect_uris TEXT NOT NULL,
	scopes TEXT NOT NULL,
	jwks_url TEXT NOT NULL,
	jwks BLOB NOT NULL,
	launch_url TEXT NOT NULL,
	status TEXT NOT NULL,
	created INTEGER NOT NULL
);

CREATE TABLE auth_users (
	username TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	role TEXT NOT NULL,
	fhir_user TEXT NOT NULL,
	patients TEXT NOT NULL,
	created INTEGER NOT NULL
);

CREATE TABLE auth_launches (
	hash BLOB PRIMARY KEY,
	client_id TEXT NOT NULL,
	username TEXT NOT NULL,
	patient TEXT NOT NULL,
	encounter TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);

CREATE TABLE auth_grants (
	id TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	username TEXT NOT NULL,
	fhir_user TEXT NOT NULL,
	scopes TEXT NOT NULL,
	patient TEXT NOT NULL,
	encounter TEXT NOT NULL,
	nonce TEXT NOT NULL,
	created INTEGER NOT NULL,
	revoked INTEGER NOT NULL
);

CREATE INDEX auth_grants_client ON auth_grants (client_id);
CREATE INDEX auth_grants_username ON auth_grants (username);

CREATE TABLE auth_codes (
	hash BLOB PRIMARY KEY,
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	used INTEGER NOT NULL
);

CREATE TABLE auth_tokens (
	hash BLOB PRIMARY KEY,
	kind TEXT NOT NULL,
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	issued INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	revoked INTEGER NOT NULL,
	rotated INTEGER NOT NULL
);

CREATE INDEX auth_tokens_grant ON auth_tokens (grant_id);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires);

CREATE TABLE auth_signing_keys (
	id TEXT PRIMARY KEY,
	private_key BLOB NOT NULL,
	created INTEGER NOT NULL,
	retired INTEGER NOT NULL
);

CREATE TABLE auth_jtis (
	client_id TEXT NOT NULL,
	jti TEXT NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (client_id, jti)
);

CREATE TABLE auth_login_attempts (
	username TEXT PRIMARY KEY,
	failures INTEGER NOT NULL,
	last_failure INTEGER NOT NULL,
	locked_until INTEGER NOT NULL
);

CREATE TABLE auth_sessions (
	hash BLOB PRIMARY KEY,
	data BLOB NOT NULL,
	expires INTEGER NOT NULL
);
