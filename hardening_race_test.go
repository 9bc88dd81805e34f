//go:build race

package socketbus_test

// hardRace says the race detector is on: tests whose full size would take
// minutes under it run smaller.
const hardRace = true
