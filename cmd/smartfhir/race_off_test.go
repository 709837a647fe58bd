//go:build !race

package main

// raceDetector tells tests that the race detector is on (go test -race).
const raceDetector = false
