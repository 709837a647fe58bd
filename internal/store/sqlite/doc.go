// Package sqlite is the embedded SQLite backend of the store (modernc.org/sqlite,
// pure Go): connection settings, the dialect and its migrations. The SQL
// itself is shared with PostgreSQL in sqlstore.
package sqlite
