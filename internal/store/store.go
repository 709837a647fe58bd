package store

import (
	"context"
	"time"

	"smartfhir/internal/search"
)

// Version is one stored version of a resource. Body is the exact JSON that is
// served (id and meta already stamped); it is nil for a deletion.
type Version struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	Deleted     bool
	// Method is the HTTP method of the interaction that made the version
	// (POST, PUT, PATCH or DELETE); history reports it in entry.request.
	Method string
	Body   []byte
	// Index, when set, holds the search index rows of Body, computed by the
	// caller with the store's registry before the unit of work (where, on
	// SQLite, every microsecond holds the only writer). When nil, Put
	// computes them itself.
	Index *search.Index
}

// Store is a FHIR resource store. Every version of every resource is kept.
//
// Errors are *fhir.Error values where the caller can act on them: NotFound
// for an unknown resource or version, Gone (with the deleted version returned
// alongside) for a deleted one, Conflict for a lost race on a version number,
// Invalid for a bad query. Anything else is an internal error.
type Store interface {
	// Read returns the current version of a resource. For a deleted resource
	// it returns the deletion version and a Gone error.
	Read(ctx context.Context, typ, id string) (*Version, error)
	// VRead returns one version of a resource. A deletion version is returned
	// with a Gone error.
	VRead(ctx context.Context, typ, id string, versionID int64) (*Version, error)
	// History lists versions newest first, as the history interaction says.
	History(ctx context.Context, q HistoryQuery) (*HistoryPage, error)
	// Transact runs fn as one unit of work: everything fn writes becomes
	// visible at once, or, when fn returns an error, not at all. fn may be
	// run more than once when the database reports a serialization failure,
	// so it must not have side effects outside tx.
	Transact(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Search runs a search (R4 search.html) on the current versions of
	// resources, outside any unit of work. A bad cursor is Invalid.
	Search(ctx context.Context, q *search.Query) (*SearchResult, error)
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Tx is a unit of work. It is used from one goroutine.
type Tx interface {
	// Now is the fixed time of the transaction, truncated to
	// fhir.InstantPrecision: every version it writes has this lastUpdated.
	Now() time.Time
	// Current returns the current version of a resource, as Store.Read does
	// (a deleted resource: the deletion version and a Gone error), and holds
	// the resource against concurrent writers until the unit of work ends.
	Current(ctx context.Context, typ, id string) (*Version, error)
	// Put stores a new version. v.VersionID must be one more than the
	// current version's (1 for a new resource); a concurrent writer that got
	// there first makes Put fail with a Conflict error. v.Deleted versions
	// have no body.
	Put(ctx context.Context, v *Version) error
	// Search is Store.Search inside the unit of work: it sees what the
	// unit of work has written (conditional create, update and delete and
	// conditional references in transactions rely on it).
	Search(ctx context.Context, q *search.Query) (*SearchResult, error)
}

// HistoryQuery selects versions for the history interaction. Type and ID
// narrow it to a type or one resource (system history when both are empty).
type HistoryQuery struct {
	Type string
	ID   string
	// Since, when set, keeps versions with lastUpdated at or after it (_since).
	Since time.Time
	// At, when set, keeps the versions that were current at some instant in
	// [At, AtEnd) (_at with a partial date covers that whole range).
	At, AtEnd time.Time
	// Count is the page size (≥ 1).
	Count int
	// Cursor continues from the page that returned it; empty for the first.
	Cursor string
}

// HistoryPage is one page of history, newest first.
type HistoryPage struct {
	Versions []*Version
	// Next is the cursor of the following page, empty when this is the last.
	Next string
	// Total is the number of versions the query matches across all pages.
	Total int
}

// SearchResult is one page of a search.
type SearchResult struct {
	// Matches are the matching resources of the page, in the query's
	// order (Bundle.entry.search.mode = match).
	Matches []*Version
	// Included are the resources that _include and _revinclude add
	// (search.mode = include), each once and none that is also a match.
	Included []*Version
	// Next and Prev are the cursors of the following and preceding pages
	// (search.Query.Cursor), empty at either end. They are keyset cursors:
	// pages stay stable while data changes.
	Next, Prev string
	// Total is the number of matches across all pages when the query asked
	// for it (search.Query.Total), else -1.
	Total int
}
