// Package spec holds the official FHIR R4 (4.0.1) definitions the server
// needs, compiled from the hl7.fhir.r4.core package into one embedded table:
//
//   - every resource type and data type with its element tree (cardinality,
//     types, choice types, content references, and required bindings whose
//     value sets can be expanded from the package);
//   - the regular expressions of the primitive types;
//   - every core SearchParameter;
//   - the CompartmentDefinitions (Patient, Encounter, RelatedPerson,
//     Practitioner, Device).
//
// A second table, compiled by the same generator from the US Core 6.1.0
// package, holds the US Core SearchParameters and resource profiles
// (USCoreSearchParams, USCoreProfiles).
//
// The table is produced by the generator in ./gen (`go generate`), committed,
// and decoded once, lazily, on first use. Lookups afterwards are map reads and
// need no locking: everything handed out is read-only and safe for concurrent
// use. Callers must not modify the returned values.
package spec
