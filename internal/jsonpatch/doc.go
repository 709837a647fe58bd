// Package jsonpatch applies JSON Patch documents (RFC 6902) with JSON Pointer
// paths (RFC 6901) to JSON documents, keeping the member order of objects so
// that a patched FHIR resource differs from the original only where the
// patch says.
package jsonpatch
