//go:build race

package attack

// raceEnabled says the test binary runs under the race detector.
const raceEnabled = true
