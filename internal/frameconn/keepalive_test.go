package frameconn_test

import (
	"errors"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// isPing reports whether h is a keepalive ping.
func isPing(h wire.Header) bool { return h.Type == wire.TypeStart && h.Flags == wire.FlagPing }

// TestKeepaliveTimeline: a connection that hears nothing pings its peer
// one PingInterval after it last heard from it, pings again half an
// interval later, and closes with ErrIdle two intervals after — both
// pings missed. The peer here reads the pings but never answers.
func TestKeepaliveTimeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		const interval = time.Second
		c := frameconn.New(a, frameconn.Config{PingInterval: interval})
		start := time.Now()
		closedAt := make(chan time.Duration, 1)
		c.SetOnClose(func(err error) {
			if !errors.Is(err, frameconn.ErrIdle) {
				t.Errorf("OnClose(%v), want ErrIdle", err)
			}
			closedAt <- time.Since(start)
		})
		c.Start(releaseAll)
		pings := make(chan time.Duration, 10)
		go func() {
			defer close(pings)
			for {
				h, _, err := readRaw(b)
				if err != nil {
					return
				}
				if isPing(h) {
					pings <- time.Since(start)
				}
			}
		}()
		time.Sleep(interval - time.Millisecond)
		synctest.Wait()
		if len(pings) != 0 {
			t.Fatalf("a ping %v after the start, want none before %v", <-pings, interval)
		}
		var got []time.Duration
		for p := range pings {
			got = append(got, p)
		}
		if want := []time.Duration{interval, interval * 3 / 2}; !slices.Equal(got, want) {
			t.Fatalf("pings at %v, want at %v", got, want)
		}
		if at := <-closedAt; at != 2*interval {
			t.Fatalf("closed %v after the start, want %v", at, 2*interval)
		}
		if err := c.Err(); !errors.Is(err, frameconn.ErrIdle) {
			t.Fatalf("Err = %v, want ErrIdle", err)
		}
		c.Wait()
	})
}

// TestKeepaliveAnsweredStaysOpen: a peer that answers every ping (any
// frame counts) keeps the connection open, and is pinged only after an
// interval of silence each time.
func TestKeepaliveAnsweredStaysOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		const interval = time.Second
		c := frameconn.New(a, frameconn.Config{PingInterval: interval})
		start := time.Now()
		c.Start(releaseAll)
		pings := make(chan time.Duration, 100)
		go func() {
			defer close(pings)
			for {
				h, _, err := readRaw(b)
				if err != nil {
					return
				}
				if isPing(h) {
					pings <- time.Since(start)
					if _, err := b.Write(rawFrame(0, nil)); err != nil {
						return
					}
				}
			}
		}()
		time.Sleep(10 * interval)
		synctest.Wait()
		if err := c.Err(); err != nil {
			t.Fatalf("after %v of answered pings: Err = %v, want open", 10*interval, err)
		}
		c.Close(nil)
		c.Wait()
		var got []time.Duration
		for p := range pings {
			got = append(got, p)
		}
		if len(got) < 5 {
			t.Fatalf("pings at %v, want one at least every %v", got, 2*interval)
		}
		last := time.Duration(0)
		for _, p := range got {
			if p-last < interval {
				t.Fatalf("pings at %v: %v after the last answer, want at least %v of silence", got, p-last, interval)
			}
			last = p
		}
	})
}
