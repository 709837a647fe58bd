// Package audit records who accessed which patient data through the FHIR
// API: one Event per request (read, search, write, export; success or
// denial), batched to the database by a background writer so that a
// request pays for an append to a slice, and shown to administrators as
// R4 AuditEvent resources. Records are append-only: the schema refuses
// updates and deletes.
package audit
