package socketbus_test

import (
	"bytes"
	"context"
	"encoding/binary"
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
	if len(answer.payload) != 16 || binary.BigEndian.Uint32(answer.payload[8:]) != 4 || binary.BigEndian.Uint32(answer.payload[12:]) != server.DefaultStreamWindow {
		t.Fatalf("join answer payload %x, want 16 bytes: the limit 4 at 8, the stream window at 12", answer.payload)
	}
}

// TestV3WithoutHeadersAllocatesNoMore: a Call without headers allocates
// no more on a version-3 connection than on a version-2 one (client and
// server in this process together): the 2-byte empty header block costs
// no allocation anywhere on the path.
func TestV3WithoutHeadersAllocatesNoMore(t *testing.T) {
	perCall := func(version uint8) float64 {
		_, addr := startServer(t, server.Config{})
		ch := socketbus.ChannelFromName(t.Name())
		v := socketbus.WithProtocolVersion(version)
		a, b := dial(t, addr, ch, v), dial(t, addr, ch, v)
		startServe(t, b, socketbus.HandlerFunc(echoUpper))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		body := bytes.Repeat([]byte("x"), 128)
		call := func() {
			if _, err := a.Call(ctx, body); err != nil {
				t.Fatalf("v%d Call: %v", version, err)
			}
		}
		for range 50 {
			call() // warm the pools
		}
		return testing.AllocsPerRun(300, call)
	}
	v2, v3 := perCall(2), perCall(3)
	t.Logf("allocations per Call, client and server: v2 %.1f, v3 %.1f", v2, v3)
	if v3 > v2+1 {
		t.Fatalf("a v3 Call without headers allocates %.1f times, a v2 one %.1f: want no more", v3, v2)
	}
}
