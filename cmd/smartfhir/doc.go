// Command smartfhir is the whole server in one binary: the FHIR R4 API, its
// storage, and the commands that administer it. It is the only package that
// picks a storage backend and wires the others together.
//
// Usage:
//
//	smartfhir serve   [--addr] [--base-url] [--db] [--data-dir] [--tls-cert --tls-key]
//	smartfhir migrate [--db] [--data-dir]
//
// Every flag can also be set with an environment variable SMARTFHIR_<FLAG>
// (upper case, dashes as underscores); a flag on the command line wins.
package main
