package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// rawJoin joins channel with a raw connection speaking version.
func rawJoin(t *testing.T, addr string, channel socketbus.ID, version uint8) *testpeer.Conn {
	t.Helper()
	c := testpeer.Dial(t, addr)
	c.NC.SetDeadline(time.Now().Add(10 * time.Second))
	c.Version = version
	if err := c.JoinChannel(channel, nil); err != nil {
		t.Fatalf("join with version %d: %v", version, err)
	}
	return c
}

// TestVersionMismatchIsRefused checks that a frame of the other version on
// a connection, or a v2 frame form on a v1 connection, closes it with a
// connection-level error.
func TestVersionMismatchIsRefused(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	cases := []struct {
		name    string
		joined  uint8
		frame   func(id socketbus.ID) (wire.Header, []byte)
		wantErr wire.Code
	}{
		{"v2 frame on v1", 1, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 2, Type: wire.TypeStart, Flags: wire.FlagPing, ClientID: id, ChannelID: ch, Final: true}, nil
		}, wire.CodeBadVersion},
		{"v1 frame on v2", 2, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 1, Type: wire.TypeStart, Flags: wire.FlagPing, ClientID: id, ChannelID: ch, Final: true}, nil
		}, wire.CodeBadVersion},
		{"push credit on v1", 1, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 1, Type: wire.TypeStart, Flags: wire.FlagReceive, ClientID: id, ChannelID: ch, Final: true}, wire.AppendCredit(nil, 4)
		}, wire.CodeProtocol},
		{"whole request on v1", 1, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 1, Type: wire.TypeStart, Flags: wire.FlagRequest, RequestID: uuid.New(), ClientID: id, ChannelID: ch, Final: true}, []byte("hi")
		}, wire.CodeProtocol},
		{"return on v1", 1, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 1, Type: wire.TypeError, Flags: wire.FlagReceive, RequestID: uuid.New(), ClientID: id, ChannelID: ch, Final: true}, wire.AppendError(nil, wire.CodeReturned, "")
		}, wire.CodeProtocol},
		{"return of a request never pushed", 2, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 2, Type: wire.TypeError, Flags: wire.FlagReceive, RequestID: uuid.New(), ClientID: id, ChannelID: ch, Final: true}, wire.AppendError(nil, wire.CodeRemote, "")
		}, wire.CodeProtocol},
		{"whole request over the initial credit", 2, func(id socketbus.ID) (wire.Header, []byte) {
			return wire.Header{Version: 2, Type: wire.TypeStart, Flags: wire.FlagRequest, RequestID: uuid.New(), ClientID: id, ChannelID: ch, Final: true}, make([]byte, wire.InitialRequestCredit+1)
		}, wire.CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := rawJoin(t, addr, ch, tc.joined)
			h, payload := tc.frame(c.ID)
			c.WriteFrame(h, payload)
			for {
				got, p, err := c.ReadFrame()
				if err != nil {
					t.Fatalf("got %v before an error frame, want a connection-level %s", err, tc.wantErr)
				}
				if got.Type != wire.TypeError {
					continue
				}
				e, perr := wire.ParseError(p)
				if got.Flags != 0 || perr != nil || e.Code != tc.wantErr {
					t.Fatalf("got %v %v, want a connection-level %s", got, e, tc.wantErr)
				}
				if got.Version != tc.joined {
					t.Fatalf("error frame of version %d, want the connection's %d", got.Version, tc.joined)
				}
				return
			}
		})
	}
}

// TestPushStateMachine drives push credit, stop and return from a raw v2
// receiver and checks the server's answers and its refusals of what a
// hostile receiver might try: returning a request it has taken, a zero
// credit.
func TestPushStateMachine(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	nc := rawJoin(t, addr, ch, 2)
	hdr := func(typ wire.FrameType, flags wire.Flags, req socketbus.ID) wire.Header {
		h := nc.Header(typ, flags, req)
		h.Final = typ != wire.TypeChunk
		return h
	}
	requester := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	calls := make(chan string, 3)
	for _, body := range []string{"one", "two"} {
		go func() {
			resp, err := requester.Call(ctx, []byte(body))
			calls <- fmt.Sprintf("%s %s %v", body, resp, err)
		}()
	}
	nc.WriteFrame(hdr(wire.TypeStart, wire.FlagReceive, socketbus.ID{}), wire.AppendCredit(nil, 2))
	var pushed []wire.Header
	bodies := map[socketbus.ID]string{}
	for range 2 {
		h, p := nc.Read()
		if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || !h.Final || len(p) < 16 || socketbus.ID(p[:16]) != (socketbus.ID{}) {
			t.Fatalf("got %v, want a whole pushed request (zero receive ID)", h)
		}
		pushed = append(pushed, h)
		bodies[h.RequestID] = string(p[16:])
	}
	// Stop: answered by the same frame, after which nothing is pushed.
	nc.WriteFrame(hdr(wire.TypeEnd, wire.FlagReceive, socketbus.ID{}), nil)
	if h, _ := nc.Read(); h.Type != wire.TypeEnd || h.Flags != wire.FlagReceive || h.RequestID != (socketbus.ID{}) {
		t.Fatalf("answer to a stop: got %v, want end|receive with the zero ID", h)
	}
	// Return the first; answer the second.
	nc.WriteFrame(hdr(wire.TypeError, wire.FlagReceive, pushed[0].RequestID), wire.AppendError(nil, wire.CodeReturned, ""))
	nc.WriteFrame(hdr(wire.TypeStart, wire.FlagResponse, pushed[1].RequestID), []byte("raw "+bodies[pushed[1].RequestID]))
	if got := <-calls; !strings.HasSuffix(got, "raw "+strings.Fields(got)[0]+" <nil>") {
		t.Fatalf("the answered request: got %q, want its raw answer", got)
	}
	// The returned one waits at the head of the queue; credit takes it
	// again, as a fresh delivery.
	nc.WriteFrame(hdr(wire.TypeStart, wire.FlagReceive, socketbus.ID{}), wire.AppendCredit(nil, 1))
	h, p := nc.Read()
	if h.RequestID != pushed[0].RequestID || !h.Final || string(p[16:]) != bodies[h.RequestID] {
		t.Fatalf("after the return: got %v %q, want request %x again with its body %q", h, p, pushed[0].RequestID[:4], bodies[pushed[0].RequestID])
	}
	// Taking it (a body grant) and then returning it is refused.
	nc.WriteFrame(hdr(wire.TypeChunk, wire.FlagReceive|wire.FlagCredit, h.RequestID), wire.AppendCredit(nil, 1000))
	nc.WriteFrame(hdr(wire.TypeError, wire.FlagReceive, h.RequestID), wire.AppendError(nil, wire.CodeReturned, ""))
	for {
		got, payload := nc.Read()
		if got.Type != wire.TypeError || got.Flags != 0 {
			continue
		}
		if e, err := wire.ParseError(payload); err != nil || e.Code != wire.CodeProtocol {
			t.Fatalf("a return after taking: got %v %v, want a connection-level protocol error", e, err)
		}
		break
	}
	if got := <-calls; !strings.Contains(got, "peer disconnected") {
		t.Fatalf("the request held by the connection cut off: got %q, want ErrPeerGone", got)
	}

	// A zero credit is malformed.
	nc2 := rawJoin(t, addr, ch, 2)
	h2 := nc2.Header(wire.TypeStart, wire.FlagReceive, socketbus.ID{})
	h2.Final = true
	nc2.WriteFrame(h2, wire.AppendCredit(nil, 0))
	for {
		got, payload := nc2.Read()
		if got.Type == wire.TypeError && got.Flags == 0 {
			if e, err := wire.ParseError(payload); err != nil || e.Code != wire.CodeProtocol {
				t.Fatalf("zero push credit: got %v %v, want a protocol error", e, err)
			}
			break
		}
	}
}
