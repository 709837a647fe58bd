-- The authorization server's state (internal/smart). Tokens, codes,
-- launches and sessions are keyed by the SHA-256 of their value; instants
-- are microseconds since the Unix epoch; flags are 0 or 1.
CREATE TABLE auth_clients (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	secret_hash BYTEA NOT NULL,
	redirect_uris TEXT NOT NULL,
	scopes TEXT NOT NULL,
	jwks_url TEXT NOT NULL,
	jwks BYTEA NOT NULL,
	launch_url TEXT NOT NULL,
	status TEXT NOT NULL,
	created BIGINT NOT NULL
);

CREATE TABLE auth_users (
	username TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	role TEXT NOT NULL,
	fhir_user TEXT NOT NULL,
	patients TEXT NOT NULL,
	created BIGINT NOT NULL
);

CREATE TABLE auth_launches (
	hash BYTEA PRIMARY KEY,
	client_id TEXT NOT NULL,
	username TEXT NOT NULL,
	patient TEXT NOT NULL,
	encounter TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL
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
	created BIGINT NOT NULL,
	revoked BIGINT NOT NULL
);

CREATE INDEX auth_grants_client ON auth_grants (client_id);
CREATE INDEX auth_grants_username ON auth_grants (username);

CREATE TABLE auth_codes (
	hash BYTEA PRIMARY KEY,
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	created BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	used BIGINT NOT NULL
);

CREATE TABLE auth_tokens (
	hash BYTEA PRIMARY KEY,
	kind TEXT NOT NULL,
	grant_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	issued BIGINT NOT NULL,
	expires BIGINT NOT NULL,
	revoked BIGINT NOT NULL,
	rotated BIGINT NOT NULL
);

CREATE INDEX auth_tokens_grant ON auth_tokens (grant_id);
CREATE INDEX auth_tokens_expires ON auth_tokens (expires);

CREATE TABLE auth_signing_keys (
	id TEXT PRIMARY KEY,
	private_key BYTEA NOT NULL,
	created BIGINT NOT NULL,
	retired BIGINT NOT NULL
);

CREATE TABLE auth_jtis (
	client_id TEXT NOT NULL,
	jti TEXT NOT NULL,
	expires BIGINT NOT NULL,
	PRIMARY KEY (client_id, jti)
);

CREATE TABLE auth_login_attempts (
	username TEXT PRIMARY KEY,
	failures BIGINT NOT NULL,
	last_failure BIGINT NOT NULL,
	locked_until BIGINT NOT NULL
);

CREATE TABLE auth_sessions (
	hash BYTEA PRIMARY KEY,
	data BYTEA NOT NULL,
	expires BIGINT NOT NULL
);
