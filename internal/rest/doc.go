// Package rest is the FHIR R4 RESTful API (http.html): read, vread,
// create, update, patch, delete, history, capabilities, batch and
// transaction, over the store.Store contract. It speaks JSON only.
//
// Every interaction lives in its own file and returns an error; one adapter
// (errors.go) turns errors into an OperationOutcome and an HTTP status, so
// that every failure a client sees has the same shape. The write
// interactions are written once, against a store.Tx, and used both by the
// HTTP handlers and by batch and transaction entries (package bundle).
package rest
