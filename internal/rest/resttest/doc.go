// Package resttest is the HTTP-level conformance suite of the FHIR REST
// API: Run drives a running server with plain net/http and checks status
// codes, headers and bodies against FHIR R4 http.html. The same suite runs
// against an in-memory store in package rest and against the real server
// on SQLite and PostgreSQL in cmd/smartfhir.
package resttest
