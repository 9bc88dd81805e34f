package server_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// FuzzWebSocket feeds arbitrary bytes to the server over WebSocket, in two
// binary messages cut at split: the server must answer or close within
// its timeouts, never crash, and go on serving a normal pair.
func FuzzWebSocket(f *testing.F) {
	_, url := testpeer.StartWebSocketServer(f, server.Config{JoinTimeout: 5 * time.Second, FrameReadTimeout: 5 * time.Second})
	check := socketbus.ChannelFromName("ws-fuzz-check")
	a := dial(f, "websocket", check, testpeer.WebSocketDialer(url, "", nil))
	b := dial(f, "websocket", check, testpeer.WebSocketDialer(url, "", nil))

	channel := socketbus.ChannelFromName("ws-fuzz")
	join := wire.Header{Version: wire.Version2, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: uuid.New(), ChannelID: channel, Final: true}
	seed := wire.AppendHeader(nil, &join)
	for _, fr := range []struct {
		h       wire.Header
		payload []byte
	}{
		{wire.Header{Type: wire.TypeStart, Flags: wire.FlagReceive, Final: true}, wire.AppendCredit(nil, 8)},
		{wire.Header{Type: wire.TypeStart, Flags: wire.FlagRequest, RequestID: uuid.New(), Final: true}, []byte("whole")},
		{wire.Header{Type: wire.TypeStart, Flags: wire.FlagPing, Final: true}, []byte("12345678")},
		{wire.Header{Type: wire.TypeEnd, Flags: wire.FlagReceive, Final: true}, nil},
	} {
		h := fr.h
		h.Version, h.ClientID, h.ChannelID, h.Length = wire.Version2, join.ClientID, join.ChannelID, uint32(len(fr.payload))
		seed = append(wire.AppendHeader(seed, &h), fr.payload...)
	}
	f.Add(seed, uint16(30))
	f.Add(seed, uint16(68))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint16(3))
	huge := join
	huge.Length = 1 << 31
	f.Add(wire.AppendHeader(nil, &huge), uint16(0))

	var inputs atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		ws.SetReadLimit(-1)
		cut := int(split) % (len(data) + 1)
		// Write errors are fine: the server may have closed already.
		if err := ws.Write(ctx, websocket.MessageBinary, data[:cut]); err == nil {
			ws.Write(ctx, websocket.MessageBinary, data[cut:])
		}
		// Close as a client would: the server reads the input up to the
		// close frame and answers it. Its answer may be a close of its own
		// with an error status, after an error frame: any answer will do,
		// as long as one comes.
		begun := time.Now()
		ws.Close(websocket.StatusNormalClosure, "")
		if d := time.Since(begun); d > 9*time.Second {
			t.Fatalf("the server did not answer the close of a connection for %v", d)
		}
		if inputs.Add(1)%64 != 1 {
			return
		}
		served := make(chan error, 1)
		go func() { served <- serveN(ctx, b, 1, upper) }()
		got, err := roundTrip(ctx, a, []byte("still serving"))
		if err != nil || string(got) != "STILL SERVING" {
			t.Fatalf("round trip of a normal pair after %d fuzzed connections: got %q, %v; want %q, nil", inputs.Load(), got, err, "STILL SERVING")
		}
		if err := <-served; err != nil {
			t.Fatalf("responder: %v", err)
		}
	})
}
