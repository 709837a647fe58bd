// Package validate checks incoming FHIR R4 JSON resources against the
// official definitions compiled in package spec: well-formed JSON, known
// resource types, no unknown elements at any depth, cardinality, the JSON
// type and lexical form of every primitive (R4 §2.24 Data Types, §2.6.2 JSON
// representation), choice types, primitive extensions (_name), contained
// resources, and required bindings whose value sets are enumerable.
//
// Validation is one parse into a light tree followed by one walk over it,
// driven by the precomputed element maps of package spec: no reflection and
// no regular expressions per request. Invariants (FHIRPath constraints) and
// profiles are not checked.
package validate
