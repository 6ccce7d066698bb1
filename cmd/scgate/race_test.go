//go:build race

package main

// raceEnabled: the tests run with -race, so the binaries they build use it too.
const raceEnabled = true
