// Package bench holds the load scenarios of the performance budget; see
// README.md in this directory and docs/benchmarks.md for the figures.
package bench
