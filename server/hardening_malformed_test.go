package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// hardMalformedHeader returns a header the v1 decoder refuses, made by
// breaking one or more fields of a valid header at random, and the code
// the decoder refuses it with.
func hardMalformedHeader(rng *rand.Rand, client, channel socketbus.ID) ([]byte, wire.Code) {
	for {
		h := wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest,
			ClientID: client, ChannelID: channel, Sequence: rng.Uint32N(1 << 20), TimeoutMillis: rng.Uint64N(1 << 20)}
		binary.BigEndian.PutUint64(h.RequestID[:], rng.Uint64())
		binary.BigEndian.PutUint64(h.RequestID[8:], rng.Uint64())
		for range 1 + rng.IntN(2) {
			switch rng.IntN(6) {
			case 0:
				h.Version = uint8(rng.UintN(256))
			case 1:
				h.Type = wire.FrameType(rng.UintN(256))
			case 2:
				h.Flags = wire.Flags(rng.UintN(1 << 16))
			case 3:
				h.Length = wire.MaxFramePayload + 1 + rng.Uint32N(1<<32-1-wire.MaxFramePayload)
			case 4:
				h.Type, h.Flags = wire.TypeChunk, wire.FlagJoin // a flag the type may not carry
			case 5:
				h.Type, h.Final = wire.TypeEnd, false // an end without the final bit
			}
		}
		b := wire.AppendHeader(nil, &h)
		if _, _, err := wire.ParseHeader(b); err != nil {
			var werr *wire.Error
			if !errors.As(err, &werr) {
				panic(fmt.Sprintf("ParseHeader error %T is not a *wire.Error", err))
			}
			return b, werr.Code
		}
	}
}

// TestHardeningMalformedHeaders: 10,000 connections, each joined or not,
// send one header the decoder refuses, or (unjoined) a valid frame that is
// not a join. Each must get an error frame with the decoder's code, then a
// clean close; afterwards the server has no connection open and the
// process no more goroutines than before, and a normal pair still
// completes a round trip.
func TestHardeningMalformedHeaders(t *testing.T) {
	const (
		conns   = 10000
		workers = 16
	)
	srv, addr := startServer(t, server.Config{})
	pairChannel := socketbus.ChannelFromName("hard-malformed-pair")
	a := dial(t, addr, pairChannel)
	b := dial(t, addr, pairChannel)
	channel := socketbus.ChannelFromName("hard-malformed")
	baseConns, baseline := srv.Stats().Connections, runtime.NumGoroutine()

	seed := uint64(time.Now().UnixNano())
	var next atomic.Int64
	var counts hardCounts
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for next.Add(1) <= conns {
				kind, err := hardMalformedOne(rng, addr, channel)
				counts.Add(kind, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	open, goroutines := hardSettle(t, srv, baseConns, baseline, 30*time.Second)
	leaks := max(open-baseConns, 0) + max(goroutines-baseline, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, b, 1, upper) }()
	got, err := roundTrip(ctx, a, []byte("after the storm"))
	if err != nil || string(got) != "AFTER THE STORM" {
		t.Fatalf("round trip after the malformed headers: got %q, %v; want %q, nil", got, err, "AFTER THE STORM")
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver after the malformed headers: %v", err)
	}

	good := counts.Get("refused before join") + counts.Get("refused after join") + counts.Get("refused non-join first frame")
	t.Logf("malformed headers (seed %d): %d connections tried in %v, %d refused with the right code and closed (%v); crashes 0; leaks %d (open connections %d against a baseline of %d, goroutines %d against %d)",
		seed, conns, elapsed.Round(time.Millisecond), good, &counts, leaks, open, baseConns, goroutines, baseline)
	if good != conns {
		t.Errorf("connections refused with the right error frame and a close: got %d, want %d (%v)", good, conns, &counts)
	}
	if leaks != 0 {
		t.Errorf("leaks: got %d connections over the baseline of %d and %d goroutines over the baseline of %d, want 0", open-baseConns, baseConns, goroutines-baseline, baseline)
	}
}

// hardMalformedOne runs one connection of TestHardeningMalformedHeaders and
// says how it went.
func hardMalformedOne(rng *rand.Rand, addr string, channel socketbus.ID) (string, error) {
	c, err := hardDial(addr)
	if err != nil {
		return "dial failed", err
	}
	defer c.Close()
	joined := rng.IntN(2) == 0
	kind := "refused before join"
	if joined {
		kind = "refused after join"
		if err := c.JoinChannel(channel, nil); err != nil {
			return "join failed", err
		}
	} else {
		c.Channel = channel
	}
	var frame []byte
	var want wire.Code
	if !joined && rng.IntN(8) == 0 {
		// A well-formed frame that is not a join.
		kind = "refused non-join first frame"
		h := c.Header(wire.TypeStart, wire.FlagRequest, uuid.New())
		frame, want = wire.AppendHeader(nil, &h), wire.CodeProtocol
	} else {
		frame, want = hardMalformedHeader(rng, c.ID, channel)
	}
	if _, err := c.NC.Write(frame); err != nil {
		return "write failed", err
	}
	h, code, err := c.Refusal()
	switch {
	case errors.Is(err, testpeer.ErrNoErrorFrame):
		return "closed without an error frame", err
	case err != nil && code == 0:
		return "no error frame", err
	case code != want:
		return "wrong code", fmt.Errorf("error frame code: got %v, want %v", code, want)
	case h.Flags != 0:
		return "wrong flags", fmt.Errorf("error frame flags: got %v, want none (a connection-level error)", h.Flags)
	case err != nil:
		return "not closed after the error frame", err
	}
	return kind, nil
}

// TestHardeningLengthFromHeaderAlone: a header whose length field is over
// MaxFramePayload is refused from the header alone: the test sends no
// payload byte, and the error frame (too_large) and the close still come,
// before the join and after it, whatever the frame's type. Before the join,
// refusing such headers allocates far less than one payload per header.
func TestHardeningLengthFromHeaderAlone(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	channel := socketbus.ChannelFromName("hard-length")
	lengths := []uint32{wire.MaxFramePayload + 1, 1<<31 + 7, 1<<32 - 1}
	frames := []struct {
		name   string
		joined bool
		typ    wire.FrameType
		flags  wire.Flags
	}{
		{"join", false, wire.TypeStart, wire.FlagJoin},
		{"request start", true, wire.TypeStart, wire.FlagRequest},
		{"request chunk", true, wire.TypeChunk, wire.FlagRequest},
		{"response chunk", true, wire.TypeChunk, wire.FlagResponse},
		{"credit grant", true, wire.TypeChunk, wire.FlagCredit | wire.FlagReceive},
		{"error", true, wire.TypeError, wire.FlagRequest},
		{"connection error", true, wire.TypeError, 0},
	}
	for _, f := range frames {
		for _, length := range lengths {
			t.Run(fmt.Sprintf("%s/%d", f.name, length), func(t *testing.T) {
				c, err := hardDial(addr)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				c.Channel = channel
				if f.joined {
					if err := c.JoinChannel(channel, nil); err != nil {
						t.Fatalf("join: %v", err)
					}
				}
				h := c.Header(f.typ, f.flags, uuid.New())
				h.Sequence, h.Final, h.Length = 1, f.typ == wire.TypeError || f.typ == wire.TypeStart && f.flags == wire.FlagJoin, length
				if _, err := c.NC.Write(wire.AppendHeader(nil, &h)); err != nil {
					t.Fatalf("writing the header: %v", err)
				}
				eh, code, err := c.Refusal()
				if err != nil {
					t.Fatalf("after a header of length %d and no payload: %v", length, err)
				}
				if code != wire.CodeTooLarge || eh.Flags != 0 {
					t.Fatalf("error frame: got code %v flags %v, want too_large with no flags", code, eh.Flags)
				}
			})
		}
	}

	// Allocation: refusing an oversized join costs a connection's
	// bookkeeping, not its declared payload.
	const n = 200
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	for range n {
		c, err := hardDial(addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		h := c.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
		h.Final, h.Length = true, 1<<32-1
		if _, err := c.NC.Write(wire.AppendHeader(nil, &h)); err != nil {
			t.Fatalf("writing the header: %v", err)
		}
		if _, code, err := c.Refusal(); err != nil || code != wire.CodeTooLarge {
			t.Fatalf("oversized join: got code %v, %v; want too_large and a close", code, err)
		}
		c.Close()
	}
	metrics.Read(sample)
	perConn := (sample[0].Value.Uint64() - before) / n
	t.Logf("refusing %d joins declaring 2^32-1 payload bytes allocated %d bytes per connection, client side included (one payload: %d)", n, perConn, wire.MaxFramePayload)
	if perConn >= wire.MaxFramePayload {
		t.Errorf("allocated per refused join: got %d bytes, want under %d (no payload buffer)", perConn, wire.MaxFramePayload)
	}
}
