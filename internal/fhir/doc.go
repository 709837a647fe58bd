// Package fhir holds the FHIR R4 core that every other package shares and
// that does no I/O: the resource envelope (type, id, meta, raw JSON),
// references, instants and partial dates, and the error model that becomes an
// OperationOutcome and an HTTP status in exactly one place.
//
// It must not import net/http or database/sql (a test in cmd/smartfhir
// enforces the dependency rules of the design).
package fhir
