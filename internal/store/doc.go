// Package store is the storage contract that everything above the database
// depends on: versioned resources, history and the unit of work. The SQL
// implementation lives in sqlstore, with one backend each in sqlite and
// postgres; storetest is the conformance suite both must pass.
//
// Only cmd/smartfhir picks a backend; every other package sees these
// interfaces.
package store
