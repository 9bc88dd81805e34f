package server_test

import (
	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/heapsample"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
)

// Helpers for the hardening tests (hardening_*_test.go, fuzz_states_test.go),
// shared with the root package's through internal/testpeer. They return
// errors instead of failing the test, so that worker goroutines can use
// them.
var (
	hardDial       = testpeer.OpenSmall
	hardJoin       = testpeer.JoinSmall
	hardSettle     = testpeer.Settle
	hardLiveHeap   = heapsample.Live
	hardResponders = testpeer.Responders
)

// hardCounts tallies outcomes from many goroutines.
type hardCounts = testpeer.Counts

// hardResponseFrames encodes a whole response to request id, from client
// from on channel: start, one chunk with body, end.
func hardResponseFrames(from, channel, id socketbus.ID, body []byte) []byte {
	return testpeer.WholeStream(wire.FlagResponse, from, channel, id, body)
}
