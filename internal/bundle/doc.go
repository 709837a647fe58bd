// Package bundle processes batch and transaction Bundles (FHIR R4
// http.html §3.1.0.11): it checks the Bundle, gives POST entries their
// server ids up front, rewrites urn:uuid: and urn:oid: references between
// entries, runs the entries in the order the specification prescribes and
// builds the response Bundle.
//
// It does not know how one entry is executed: the FHIR REST API hands it an
// [Executor] that runs an entry inside a store.Tx through the same code as
// the single-resource interactions, so both behave the same.
package bundle
