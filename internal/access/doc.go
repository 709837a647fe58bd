// Package access holds the SMART on FHIR scope language and its algebra:
// parsing SMART App Launch v1 and v2 scopes (including granular
// "?category=" scopes), deciding whether one scope covers another, and
// intersecting the scopes an app asks for with those it may be granted.
//
// The grammar is SMART App Launch 2.2 §"Scopes and Launch Context"
// (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
package access
