package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// hardFuzzChannel is the channel the seed corpus joins. A real client on it
// answers every request, so that fuzzed requests get somewhere.
var hardFuzzChannel = socketbus.ChannelFromName("hard-fuzz")

// FuzzServerConn feeds a whole server connection arbitrary bytes, in two
// writes split at a fuzzer-chosen point, then half-closes it. The server
// must neither panic nor hang: it answers or not, but it closes the
// connection once the input ends (read deadline 10 s). Every 64 inputs,
// and on the first, a normal pair of clients on a channel no input can
// name must still complete a round trip. The seed corpus is in
// testdata/fuzz/FuzzServerConn: valid joins and frames, truncated
// headers, oversized lengths and garbage.
func FuzzServerConn(f *testing.F) {
	_, addr := startServer(f, server.Config{JoinTimeout: 5 * time.Second, FrameReadTimeout: 5 * time.Second})
	peer := dial(f, addr, hardFuzzChannel)
	f.Cleanup(hardResponders([]*socketbus.Client{peer}, 4, nil))
	check := uuid.New()
	a := dial(f, addr, check)
	b := dial(f, addr, check)
	f.Cleanup(hardResponders([]*socketbus.Client{b}, 1, nil))

	// A seed built here too, so the target has one without the corpus.
	join := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: uuid.New(), ChannelID: hardFuzzChannel, Final: true}
	f.Add(wire.AppendHeader(nil, &join), uint16(40))
	// And a v2 one: join, push credit, a whole request, a stop and a return.
	join2 := join
	join2.Version = wire.Version2
	v2 := wire.AppendHeader(nil, &join2)
	for _, fr := range []struct {
		h       wire.Header
		payload []byte
	}{
		{wire.Header{Type: wire.TypeStart, Flags: wire.FlagReceive, Final: true}, wire.AppendCredit(nil, 8)},
		{wire.Header{Type: wire.TypeStart, Flags: wire.FlagRequest, RequestID: uuid.New(), Final: true}, []byte("whole")},
		{wire.Header{Type: wire.TypeEnd, Flags: wire.FlagReceive, Final: true}, nil},
		{wire.Header{Type: wire.TypeError, Flags: wire.FlagReceive, RequestID: uuid.New(), Final: true}, wire.AppendError(nil, wire.CodeReturned, "")},
	} {
		h := fr.h
		h.Version, h.ClientID, h.ChannelID, h.Length = wire.Version2, join2.ClientID, join2.ChannelID, uint32(len(fr.payload))
		v2 = append(wire.AppendHeader(v2, &h), fr.payload...)
	}
	f.Add(v2, uint16(100))

	var inputs atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		cut := int(split) % (len(data) + 1)
		// Write errors are fine: the server may have refused the first
		// part and closed already.
		if _, err := nc.Write(data[:cut]); err == nil {
			nc.Write(data[cut:])
		}
		nc.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, nc); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server neither closed nor finished answering a connection within 10 s of its input's end")
		}
		if inputs.Add(1)%64 != 1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := roundTrip(ctx, a, []byte("still serving"))
		if err != nil || string(got) != "STILL SERVING" {
			t.Fatalf("round trip of a normal pair after %d fuzzed connections: got %q, %v; want %q, nil", inputs.Load(), got, err, "STILL SERVING")
		}
	})
}
