package frameconn_test

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/socketbus/socketbus/internal/frameconn"
)

// TestSetOnCloseAfterClose: a function set after the connection closed is
// called at once, with the close's error. A server closing every
// connection while a client was still joining used to close it before the
// join set its OnClose field (a data race the race detector found in
// TestCrossNodeChaos), and the member then never left.
func TestSetOnCloseAfterClose(t *testing.T) {
	a, _ := net.Pipe()
	c := frameconn.New(a, frameconn.Config{})
	closeErr := errors.New("server closing")
	c.Close(closeErr)
	var got error
	calls := 0
	c.SetOnClose(func(err error) { got, calls = err, calls+1 })
	if calls != 1 || !errors.Is(got, closeErr) {
		t.Fatalf("SetOnClose after Close: called %d times with %v, want once with %v", calls, got, closeErr)
	}
}

// TestSetOnCloseRacesClose: SetOnClose and Close on two goroutines, 200
// times: the function runs exactly once every time, and the race detector
// finds nothing.
func TestSetOnCloseRacesClose(t *testing.T) {
	for range 200 {
		a, _ := net.Pipe()
		c := frameconn.New(a, frameconn.Config{})
		var calls atomic.Int32
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			c.Close(nil)
		}()
		c.SetOnClose(func(error) { calls.Add(1) })
		<-closed
		if n := calls.Load(); n != 1 {
			t.Fatalf("the close function ran %d times, want once", n)
		}
	}
}
