package search

// The exported types of the package: what the store, the REST layer and the
// import command code against.

// Table names an index table. Stores map each to one SQL table.
type Table uint8

// The index tables, one per parameter type (DESIGN.md §5).
const (
	// Resources is the resource table itself (columns ColID,
	// ColLastUpdated); only Cmp may use its columns, outside an Exists.
	Resources Table = iota
	TokenTable
	StringTable
	DateTable
	ReferenceTable
	QuantityTable
	NumberTable
	URITable
)

// Column names a column of a table. Stores map each to one SQL column; the
// set is closed, so no user input ever names a column.
type Column uint8

// The columns. Each index row also has the resource's rid, its type, the
// parameter code and a group number (composite parameters).
const (
	ColID          Column = iota + 1 // Resources: the logical id (string)
	ColLastUpdated                   // Resources: meta.lastUpdated, µs since the epoch (int64)
	ColSystem                        // TokenTable, QuantityTable: system (string, "" when absent)
	ColCode                          // TokenTable, QuantityTable: code, or unit (string)
	ColNorm                          // StringTable: the value lower-cased and without accents (string)
	ColExact                         // StringTable: the value as written (string)
	ColLow                           // DateTable: start of the range, µs (int64), inclusive
	ColHigh                          // DateTable: end of the range, µs (int64), exclusive
	ColTargetType                    // ReferenceTable: the target's resource type ("" for other references)
	ColTargetID                      // ReferenceTable: the target's id ("" for other references)
	ColURL                           // ReferenceTable: an absolute or canonical reference that is not to this server ("" otherwise)
	ColValue                         // NumberTable, QuantityTable: the number (float64); URITable: the uri (string)
)

// Op is a comparison operator of Cmp.
type Op uint8

// The operators. Prefix and Contains are for strings: Prefix is a range
// scan, Contains a substring match (its argument is a literal, not a LIKE
// pattern: the store escapes it).
const (
	Eq Op = iota + 1
	Ne
	Lt
	Le
	Gt
	Ge
	Prefix
	Contains
	In // Value is a []string
)

// Expr is a node of a query's condition tree. The concrete types are And,
// Or, Not, Cmp, Exists, Composite, Chain, Has and Compartment.
type Expr interface{ isExpr() }

// And holds when all of its expressions hold (true when empty).
type And []Expr

// Or holds when any of its expressions holds (false when empty).
type Or []Expr

// Not holds when X does not.
type Not struct{ X Expr }

// Cmp compares a column of the row in scope with a value: inside an
// Exists, a column of the index row; elsewhere a column of the resource.
// Value is a string, an int64, a float64, or a []string for In.
type Cmp struct {
	Col   Column
	Op    Op
	Value any
}

// Exists holds when the resource has an index row in Table for parameter
// Param that satisfies Where (nil: any row).
type Exists struct {
	Table Table
	Param string
	Where Expr
}

// Composite holds when the resource has, for the composite parameter
// Param, one group of index rows satisfying each of Parts (R4
// search.html#composite): the parts must be met by the same value. Each
// part's Param is the component's row name (see [CompositeParam]).
type Composite struct {
	Param string
	Parts []Exists
}

// Chain holds when a reference of the resource (parameter Param) points
// to a resource of TargetType that satisfies Where (R4
// search.html#chaining). Where is evaluated on the target.
type Chain struct {
	Param      string
	TargetType string
	Where      Expr
}

// Has holds when some resource of Type refers to this one through its
// reference parameter Param and satisfies Where (R4 search.html#has,
// reverse chaining). Where is evaluated on the referring resource.
type Has struct {
	Type  string
	Param string
	Where Expr
}

// Compartment holds when the resource is in the Patient compartment of
// the patient with id Patient (R4 compartmentdefinition-patient.html):
// what patient-scoped access and export use.
type Compartment struct{ Patient string }

func (And) isExpr()         {}
func (Or) isExpr()          {}
func (Not) isExpr()         {}
func (Cmp) isExpr()         {}
func (Exists) isExpr()      {}
func (Composite) isExpr()   {}
func (Chain) isExpr()       {}
func (Has) isExpr()         {}
func (Compartment) isExpr() {}

// Total says whether a search counts its matches (R4 search.html#total).
type Total uint8

// The _total modes. A store answers TotalEstimate as TotalAccurate.
const (
	TotalNone Total = iota
	TotalEstimate
	TotalAccurate
)

// SortKey is one key of _sort (R4 search.html#sort).
type SortKey struct {
	// Param is the parameter code; "_id" and "_lastUpdated" sort on the
	// resource's own columns.
	Param string
	// Table is where the parameter's values are (ignored for _id and
	// _lastUpdated). A resource is ordered by its least value ascending
	// and its greatest descending; one without a value sorts last
	// ascending and first descending.
	Table Table
	Desc  bool
	// Rows, when set, are the parameters whose index rows hold the values:
	// the members of a union parameter (union.go), which has none of its
	// own. Otherwise the rows are Param's.
	Rows []string
}

// Include is one _include or _revinclude (R4 search.html#include).
type Include struct {
	// Source is the type of the resources that hold the reference
	// (the match's type for _include, the included type for _revinclude).
	Source string
	// Param is the reference parameter code; "*" for every reference
	// parameter of Source.
	Param string
	// Target narrows the referenced type ("" for any).
	Target string
	// Iterate also applies the include to the resources included so far
	// (":iterate", formerly ":recurse").
	Iterate bool
}

// Query is a parsed search on one resource type.
type Query struct {
	Type  string
	Where And
	// Sort is the _sort order; a store breaks ties (and orders when empty)
	// by its own stable key.
	Sort []SortKey
	// Count is the page size from _count, -1 when not given: the caller
	// applies its default and maximum before running the query. 0 asks for
	// no resources (only the total, if asked).
	Count int
	// Cursor continues from the page whose link carried it (our _cursor
	// parameter); empty for the first page.
	Cursor string
	Total  Total
	// Include and RevInclude are the _include and _revinclude values.
	Include, RevInclude []Include
	// Summary is the _summary value ("" when absent): true, text, data,
	// count or false. Elements lists the _elements values. Stores ignore
	// both: they shape the rendering.
	Summary  string
	Elements []string
	// Access, when set, is the access policy: the search matches, counts
	// and includes only resources it makes visible, and chained and _has
	// conditions see only visible resources too.
	Access Visibility
}

// Visibility says which resources of a type a request may see: those
// satisfying cond (all of them when cond is nil), none when ok is false.
// Its conditions may not use Chain or Has.
type Visibility interface {
	Visible(resourceType string) (cond Expr, ok bool)
}

// Index is what a resource contributes to the index tables: one row per
// value of every search parameter of its type, and the patients whose
// compartment it is in.
type Index struct {
	Tokens     []TokenRow
	Strings    []StringRow
	Dates      []DateRow
	References []ReferenceRow
	Quantities []QuantityRow
	Numbers    []NumberRow
	URIs       []URIRow
	// Patients are the ids of the patients whose compartment the resource
	// is in (a Patient is in its own).
	Patients []string
}

// TokenRow is a token value: Coding, CodeableConcept coding, Identifier,
// ContactPoint, code, boolean, id, uri or string used as a token. Code is
// lower-cased for a parameter whose values are strings or ContactPoints,
// which match case-insensitively (token.go); queries on it fold their
// values alike.
type TokenRow struct {
	Param  string
	Group  int
	System string
	Code   string
}

// StringRow is a string value (each part of a HumanName or Address is a
// row of its own).
type StringRow struct {
	Param string
	Group int
	Norm  string // lower-cased, accents removed: what default and :contains match
	Exact string // as written: what :exact matches
}

// DateRow is a date value as the half-open range [Low, High) of
// microseconds since the Unix epoch it stands for; an open end is
// math.MinInt64 or math.MaxInt64.
type DateRow struct {
	Param string
	Group int
	Low   int64
	High  int64
}

// ReferenceRow is a reference value: to a resource on this server
// (TargetType and TargetID), or to anything else by URL (absolute URLs of
// other servers, canonicals).
type ReferenceRow struct {
	Param      string
	Group      int
	TargetType string
	TargetID   string
	URL        string
}

// QuantityRow is a quantity value. A quantity with both a code and a
// different unit has a second row with an empty System and the unit as Code,
// so that "value||unit" finds it.
type QuantityRow struct {
	Param  string
	Group  int
	Value  float64
	System string
	Code   string
}

// NumberRow is a number value.
type NumberRow struct {
	Param string
	Group int
	Value float64
}

// URIRow is a uri value.
type URIRow struct {
	Param string
	Group int
	Value string
}
