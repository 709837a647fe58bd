// Package sqlstore is the SQL implementation of the store contract, shared by
// the SQLite and PostgreSQL backends. A backend supplies a [Driver] (how to
// run statements on its connection pool) and a [Dialect] (where its SQL and
// its error codes differ); everything else — schema use, versioning rules,
// history paging, the unit of work and its retries — lives here once.
//
// Statements are written with "?" placeholders and bound parameters only
// (STYLE.md 11); the dialect rewrites them to "$n" where the database wants
// that. Later storage code (search indexes, compartments, clients, jobs) runs
// its own statements in the same unit of work through [DB.TransactSQL] and
// [Tx.Exec], [Tx.Query] and [Tx.QueryRow], and outside one through
// [DB.Query] and [DB.QueryRow].
//
// Schema (see the backends' migrations): resources holds one row per
// resource, the pointer to its current version, keyed by the compact integer
// rid that index tables refer to; resource_versions holds every version,
// append-only, in commit-ish order by seq. Instants are stored as BIGINT
// microseconds since the Unix epoch on both backends.
package sqlstore
