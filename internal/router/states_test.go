package router_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// The request-state table of docs/PROTOCOL.md section 15.1, one case per
// cell, read from the document itself (router.ReadStateTables): every
// state a request can be in, as its sender and as its receiver see it,
// against every frame a client may send for it. Each frame is handled
// (nil error), dropped (nil error, nothing sent to anyone) or a protocol
// error, exactly as the table says, and leaves the request in the state
// the cell names (→) or in the one it was in. The router names each state
// as the table's row does (Member.Track, from reqState). The
// receiver speaks version 2, so that the table has its return
// (error|receive returned) and its pushed requests; every other cell is
// the same for a version-1 receiver, which may not send a return at all.

type outcome string

const (
	handled  outcome = "handled"
	dropped  outcome = "dropped"
	protocol outcome = "protocol"
)

// requestState brings request id to a state with a the sender and b the
// member the request is (or would be) delivered to, and returns the next
// sequence number of the request body (as a sends it) and of the response
// (as b sends it).
type requestState struct {
	name  string
	setup func(t *testing.T, a, b member, id wire.ID) (bodySeq, respSeq uint32)
}

var requestStates = []requestState{
	{"unknown", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) { return 1, 1 }},
	{"queued", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) {
		a.start(t, id, 0)
		a.handle(t, a.frame(wire.TypeChunk, wire.FlagRequest, id, 1, false, []byte("x")))
		return 2, 1
	}},
	{"delivered", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) {
		b.poll(t, uuid.New())
		a.start(t, id, 0)
		a.handle(t, a.frame(wire.TypeChunk, wire.FlagRequest, id, 1, false, []byte("x")))
		return 2, 1
	}},
	{"responding", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) {
		b.poll(t, uuid.New())
		a.send(t, id, "x")
		b.handle(t, b.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil))
		b.handle(t, b.frame(wire.TypeChunk, wire.FlagResponse, id, 1, false, []byte("r")))
		return 3, 2
	}},
	{"pushed, not taken", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) {
		b.handle(t, b.frame(wire.TypeStart, wire.FlagReceive, wire.ID{}, 0, true, wire.AppendCredit(nil, 1)))
		a.start(t, id, 0)
		a.handle(t, a.frame(wire.TypeChunk, wire.FlagRequest, id, 1, false, []byte("x")))
		return 2, 1
	}},
	{"ended", func(t *testing.T, a, b member, id wire.ID) (uint32, uint32) {
		b.poll(t, uuid.New())
		a.start(t, id, 0)
		a.handle(t, a.frame(wire.TypeError, wire.FlagRequest, id, 0, true, wire.AppendError(nil, wire.CodeCancelled, "gave up")))
		return 1, 1
	}},
}

// clientFrame is a frame a client may send for a request, from its sender
// (a) or from the member it was delivered to (b).
type clientFrame struct {
	name       string
	byReceiver bool
	build      func(m member, id wire.ID, bodySeq, respSeq uint32) frame.Frame
}

var clientFrames = []clientFrame{
	{"start|request", false, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeStart, wire.FlagRequest, id, 0, false, nil)
	}},
	{"chunk|request", false, func(m member, id wire.ID, seq, _ uint32) frame.Frame {
		return m.frame(wire.TypeChunk, wire.FlagRequest, id, seq, false, []byte("y"))
	}},
	{"end|request", false, func(m member, id wire.ID, seq, _ uint32) frame.Frame {
		return m.frame(wire.TypeEnd, wire.FlagRequest, id, seq, true, nil)
	}},
	{"error|request", false, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeError, wire.FlagRequest, id, 0, true, wire.AppendError(nil, wire.CodeCancelled, "stop"))
	}},
	{"response|credit", false, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit, id, 0, false, wire.AppendCredit(nil, 1))
	}},
	{"start|response", true, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil)
	}},
	{"chunk|response", true, func(m member, id wire.ID, _, seq uint32) frame.Frame {
		return m.frame(wire.TypeChunk, wire.FlagResponse, id, seq, false, []byte("z"))
	}},
	{"end|response", true, func(m member, id wire.ID, _, seq uint32) frame.Frame {
		return m.frame(wire.TypeEnd, wire.FlagResponse, id, seq, true, nil)
	}},
	{"error|response", true, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeError, wire.FlagResponse, id, 0, true, wire.AppendError(nil, wire.CodeRemote, "no"))
	}},
	{"receive|credit", true, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeChunk, wire.FlagReceive|wire.FlagCredit, id, 0, false, wire.AppendCredit(nil, 1))
	}},
	{"error|receive returned", true, func(m member, id wire.ID, _, _ uint32) frame.Frame {
		return m.frame(wire.TypeError, wire.FlagReceive, id, 0, true, wire.AppendError(nil, wire.CodeReturned, ""))
	}},
}

// outcomes are the table's letters.
var outcomes = map[string]outcome{"H": handled, "D": dropped, "P": protocol}

func TestRequestStateTable(t *testing.T) {
	table := router.ReadStateTables(t)
	setups := make(map[string]requestState)
	for _, st := range requestStates {
		setups[st.name] = st
	}
	frames := make(map[string]clientFrame)
	for _, cf := range clientFrames {
		frames[cf.name] = cf
	}
	if len(table.States) != len(setups) || len(table.Frames) != len(frames) {
		t.Fatalf("PROTOCOL.md 15.1 has %d states and %d frames, the test %d and %d", len(table.States), len(table.Frames), len(setups), len(frames))
	}
	for _, state := range table.States {
		for _, frameName := range table.Frames {
			st, ok := setups[state]
			if !ok {
				t.Fatalf("no setup for PROTOCOL.md 15.1's state %q", state)
			}
			cf, ok := frames[frameName]
			if !ok {
				t.Fatalf("no frame for PROTOCOL.md 15.1's column %q", frameName)
			}
			cell := table.Cells[state][frameName]
			want := outcomes[cell.Outcome]
			wantState := state
			if cell.To != "" {
				wantState = cell.To
			}
			t.Run(state+"/"+frameName, func(t *testing.T) {
				h := newHarness(t, router.Config{})
				a, b := h.join("a"), h.joinVersion("b", wire.Version2)
				id := uuid.New()
				bodySeq, respSeq := st.setup(t, a, b, id)
				req := a.Track(id)
				if got := req.State(); got != state {
					t.Fatalf("set up as %s: the router says %s", state, got)
				}
				from := a
				if cf.byReceiver {
					from = b
				}
				before := len(a.peer.all()) + len(b.peer.all())
				err := from.Handle(cf.build(from, id, bodySeq, respSeq), nil)
				after := len(a.peer.all()) + len(b.peer.all())
				got := handled
				var werr *wire.Error
				switch {
				case errors.As(err, &werr) && werr.Code == wire.CodeProtocol:
					got = protocol
				case err != nil:
					t.Fatalf("got error %v, want nil or a protocol error", err)
				case after == before:
					got = dropped
				}
				// A frame that is handled may still send nothing (a credit
				// grant that releases nothing yet, a chunk kept for a
				// queued request): it is told from a dropped one by the
				// table, which says which frames a state must ignore.
				if got == dropped && want == handled && !sendsNothingWhenHandled(state, frameName) {
					t.Fatalf("%s × %s: got dropped (nothing sent), want handled", state, frameName)
				}
				if got != want && !(got == dropped && want == handled) {
					t.Fatalf("%s × %s: got %s (err %v), want %s", state, frameName, got, err, want)
				}
				if gotState := req.State(); gotState != wantState {
					t.Fatalf("%s × %s: left the request %s, want %s", state, frameName, gotState, wantState)
				}
			})
		}
	}
}

// sendsNothingWhenHandled lists the cells where a handled frame has no
// frame to show for it.
func sendsNothingWhenHandled(state, frame string) bool {
	switch frame {
	case "chunk|request":
		// Kept until a receiver polls, or, delivered, a small chunk waits
		// for the bytes before it to be written (coalescing).
		return state == "queued" || state == "delivered" || state == "pushed, not taken"
	case "chunk|response":
		return state == "responding" // likewise
	case "receive|credit", "response|credit":
		return true // credit applied, nothing to forward yet
	case "error|receive returned":
		return true // back in the queue, with no other receiver to go to
	}
	return false
}
