// Package search is the FHIR R4 search engine's pure half: the registry of
// search parameters (every R4 core SearchParameter and the US Core 6.1.0
// ones, compiled once from the official definitions embedded by package
// spec), the extraction of index rows from a resource, and the parsing of a
// search request (R4 search.html) into a [Query].
//
// A Query is a small expression tree over the resource table and the index
// tables ([Expr]); the store renders it into SQL for its dialect with bound
// parameters only (STYLE.md 11). This package therefore imports neither
// net/http nor database/sql.
//
// Each parameter type keeps its index extraction and its query building side
// by side in one file (STYLE.md 10): token.go, str.go, date.go,
// reference.go, quantity.go, number.go, uri.go, composite.go.
package search
