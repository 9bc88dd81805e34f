package router_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestReceiverGetsAllItsCredit: the server relays a stream's bytes, not
// its frames (docs/PROTOCOL.md section 8), so a receiver that waits for
// all the bytes it granted before it grants more gets them all, whatever
// the sender's chunks: the server/window_test.go case, a receiver taking
// its implicit 256 KiB and then granting a 1 MiB window, in the router
// alone, with every frame handed to the receiver written at once.
func TestReceiverGetsAllItsCredit(t *testing.T) {
	const window = 1 << 20
	r := router.New(router.Config{DefaultTimeout: 60e9, Window: window})
	ch := uuid.New()
	sender, sp := joinSocket(t, r, ch)
	receiver, rp := joinSocket(t, r, ch)
	poll(t, receiver)
	u := startUpload(t, sender, sp)
	const body = 3 << 20
	granted := wire.StreamWindow // the receiver's implicit credit
	for range 1000 {
		rp.written()
		if got := rp.bytesTo(u.id, wire.FlagReceive); got == wire.StreamWindow && granted == wire.StreamWindow {
			// All of it was used: the whole window again.
			g := frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagReceive | wire.FlagCredit,
				RequestID: u.id, ClientID: receiver.ID(), ChannelID: ch}, Payload: wire.AppendCredit(nil, window)}
			if err := receiver.Handle(g, nil); err != nil {
				t.Fatalf("the receiver's grant: %v", err)
			}
			granted += window
		}
		credit := wire.InitialRequestCredit + sp.granted(t, u.id, wire.FlagRequest) - u.sent
		if credit <= 0 || u.sent == body {
			break
		}
		n := min(credit, wire.MaxFramePayload, body-u.sent)
		u.handle(t, wire.TypeChunk, u.seq, make([]byte, n))
		u.seq++
		u.sent += n
	}
	rp.written()
	got := rp.bytesTo(u.id, wire.FlagReceive)
	if granted != wire.StreamWindow+window {
		t.Fatalf("the receiver was handed %d bytes of its implicit %d, and never granted its window", got, wire.StreamWindow)
	}
	if u.sent <= granted {
		t.Fatalf("the sender sent %d bytes, no more than the receiver granted (%d): the credit was not what bound the stream", u.sent, granted)
	}
	if got != granted {
		t.Fatalf("the receiver granted %d bytes and was handed %d, with %d sent and all it was handed written", granted, got, u.sent)
	}
}
