package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the garbage collector's target (GOGC) when the
// environment sets none. The server's live heap is small — tens of
// megabytes: caches, prepared statements, the search registry — while each
// request allocates a few kilobytes, so at Go's default of 100 the
// collector ran several hundred times a second and took about a tenth of
// the CPU on reads by id. At 400 the heap may grow to five times what is
// live before a collection; reads by id ran 17–30 % faster (see
// docs/benchmarks.md). GOGC and GOMEMLIMIT in the environment take
// precedence.
const defaultGCPercent = 400

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
