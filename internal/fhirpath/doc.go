// Package fhirpath compiles and evaluates the subset of FHIRPath
// (http://hl7.org/fhirpath/N1/, as profiled by FHIR R4 fhirpath.html)
// that SearchParameter.expression uses, so that the search indexer can
// extract index values from a resource and access control can evaluate
// granular filters.
//
// An expression is parsed once by Compile (a lexer and a precedence-climbing
// parser following the FHIRPath grammar) and evaluated any number of times,
// concurrently, on a resource decoded by encoding/json with UseNumber
// (map[string]any, []any, string, json.Number, bool). Every result is a Node
// that carries its value and, where the definitions tell it, its FHIR type
// name (CodeableConcept, Reference, Period, dateTime, ...), which is how the
// indexer knows how to index a value. The types come from a TypeResolver the
// caller supplies; SpecTypes answers from the embedded R4 definitions.
//
// What is supported: path navigation (with choice elements value[x] and the
// _name objects that hold a primitive's id and extensions), the type
// operators is and as and the functions is(), as() and ofType() (which
// honour the type hierarchy: an Age is a Quantity, a code a string), union
// |, indexing, the Boolean, equality, equivalence, comparison, membership
// and arithmetic operators, date and dateTime literals, the environment
// variables %resource, %rootResource, %context, %ucum, %sct and %loinc,
// $this and $index, and the functions empty, exists, all, hasValue, count,
// distinct, where, select, single, first, last, tail, skip, take, union,
// combine, iif, startsWith, endsWith, contains, matches, lower, upper,
// length, substring, children, descendants, not, and FHIR's resolve,
// extension and hasExtension. What is not: quantity and time literals,
// the terminology functions (memberOf, subsumes: no core or US Core
// SearchParameter uses them), conversion functions (toString, toInteger,
// ...), aggregate and reflection functions. Compile rejects them.
package fhirpath
