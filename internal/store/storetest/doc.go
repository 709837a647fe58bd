// Package storetest is the conformance suite every store backend must pass
// (STYLE.md 3): versioning, deletion, the unit of work and its rollback,
// history with _since, _at and keyset paging, and concurrent writers that
// must never lose an update.
package storetest
