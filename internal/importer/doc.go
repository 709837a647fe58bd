// Package importer loads FHIR data files into the store: Bundles (batch
// and transaction) and NDJSON, plain or compressed with gzip or bzip2,
// named one by one or found in folders.
//
// It decides the order (Bundles of shared resources first), reads and
// decompresses files concurrently, and hands every unit of work to the same
// bundle processor as POST [base], so that what it loads obeys exactly the
// rules of the FHIR REST API: validation, ids, conditional references.
package importer
