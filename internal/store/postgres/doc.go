// Package postgres is the PostgreSQL backend of the store (pgx/v5 with a
// pgxpool): connection, the dialect — "$n" placeholders, FOR UPDATE row
// locks, SQLSTATE-based retries — and its migrations, applied under an
// advisory lock so that several replicas can start at once. The SQL itself is
// shared with SQLite in sqlstore.
package postgres
