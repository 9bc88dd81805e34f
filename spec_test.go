package socketbus_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestPushCreditWithinTheAnnouncedLimit (PROTOCOL.md §7 and §20.3, the
// spec's S7): the server announces its per-connection limit on polls,
// held requests and push credit in the join's answer, and Serve asks for
// no more push credit than that, so that its count and the server's agree.
func TestPushCreditWithinTheAnnouncedLimit(t *testing.T) {
	_, addr := startServer(t, server.Config{MaxInFlightPerClient: 4})
	ch := socketbus.ChannelFromName(t.Name())
	pb := startRecordingProxy(t, addr)
	a, b := dial(t, addr, ch), dial(t, pb.addr(), ch)
	startServe(t, b, socketbus.HandlerFunc(echoUpper), socketbus.WithConcurrency(64))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := a.Call(ctx, []byte("x")); err != nil || !bytes.Equal(got, []byte("X")) {
		t.Fatalf("Call: %q, %v", got, err)
	}
	b.Close()
	var grants []uint32
	for _, f := range pb.frames(t, true) {
		if f.h.Type == wire.TypeStart && f.h.Flags == wire.FlagReceive && f.h.RequestID == (wire.ID{}) {
			n, err := wire.ParseCredit(f.payload)
			if err != nil {
				t.Fatalf("push credit payload: %v", err)
			}
			grants = append(grants, n)
		}
	}
	if len(grants) == 0 || grants[0] != 4 {
		t.Fatalf("push credit grants %v, want a first grant of the server's limit, 4", grants)
	}
	var answer recordedFrame
	for _, f := range pb.frames(t, false) {
		if f.h.Flags == wire.FlagJoin {
			answer = f
			break
		}
	}
	if len(answer.payload) != 12 || answer.payload[11] != 4 {
		t.Fatalf("join answer payload %x, want 12 bytes ending in the limit 4", answer.payload)
	}
}
