//go:build race

package main

// raceEnabled: the tests run under the race detector, so the child vigil
// binary is built with it too.
const raceEnabled = true
