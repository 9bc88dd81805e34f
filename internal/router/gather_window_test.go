package router_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestGatherHoldsOneWindowPerMember: a gather's sender is granted only
// what every member's part has room for, so a slow member's part stays
// within one window, as an ordinary request body does
// (TestServerHoldsOneWindowPerStream), however fast the others read. A
// grant computed while a frame had been copied into some parts and not yet
// into the others once let the sender's credit run ahead of a part's, and
// a part fed past its credit then let the sender past every window (32 MiB
// held for a 32 MiB gather).
func TestGatherHoldsOneWindowPerMember(t *testing.T) {
	for _, members := range []int{2, 4} {
		for _, slowEvery := range []int{3, 29} {
			for _, chunk := range []int{16 << 10, wire.MaxFramePayload} {
				name := fmt.Sprintf("%d members, slow reads every %d, %d-byte chunks", members, slowEvery, chunk)
				t.Run(name, func(t *testing.T) { gatherOneWindow(t, members, slowEvery, chunk) })
			}
		}
	}
}

// gatherOneWindow streams a gather to members, of which the first reads
// every slowEvery rounds and the others every round, and checks in every
// round that what the slow part holds and the sender is owed stay within
// one window and the initial credit.
func gatherOneWindow(t *testing.T, members, slowEvery, chunk int) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch := uuid.New()
	sp := &socketPeer{}
	sender, err := r.JoinVersion(uuid.New(), ch, wire.Version3, sp)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(sender.Leave)
	readers := make([]*windowReader, members)
	for i := range readers {
		m, p := joinSocket(t, r, ch)
		poll(t, m)
		readers[i] = &windowReader{m: m, p: p, granted: map[wire.ID]int{}, handed: map[wire.ID]int{}}
	}
	u := &gatherUploader{m: sender, peer: sp, id: uuid.New(), chunk: chunk}
	u.send(t, wire.TypeStart, []byte{0, 0}) // no headers
	tr := sender.Track(u.id)
	const rounds = 600
	for round := range rounds {
		u.pump(t)
		if ahead := tr.GatherCreditAhead(); ahead > 0 {
			t.Fatalf("round %d: the sender holds %d bytes more credit than its slowest part granted", round, ahead)
		}
		for _, fast := range readers[1:] {
			fast.consume(t)
		}
		if round%slowEvery == slowEvery-1 {
			readers[0].consume(t)
		}
		// What the sender sent and the slow member's socket has not
		// written is held for it.
		held := u.sent - readers[0].written
		owed := wire.InitialRequestCredit + u.credited(t) - u.sent
		if held+owed > wire.StreamWindow+wire.InitialRequestCredit {
			t.Fatalf("round %d: the slow member's part holds %d bytes and the sender is owed %d more: over one window (%d) and the initial credit",
				round, held, owed, wire.StreamWindow)
		}
	}
	if u.sent < 4*wire.StreamWindow {
		t.Fatalf("the sender sent %d bytes in %d rounds: the gather stalled", u.sent, rounds)
	}
}

// gatherUploader plays a gather's sender that sends one chunk whenever it
// has credit.
type gatherUploader struct {
	m     *router.Member
	peer  *socketPeer
	id    wire.ID
	seq   uint32
	chunk int
	sent  int

	seen    int // frames of peer already counted in granted
	granted int
}

// credited returns the credit the sender was granted so far, counting
// only the peer's frames it has not seen before.
func (u *gatherUploader) credited(t *testing.T) int {
	t.Helper()
	u.peer.mu.Lock()
	defer u.peer.mu.Unlock()
	for _, f := range u.peer.frames[u.seen:] {
		if h := f.Header; h.RequestID == u.id && h.Flags == wire.FlagRequest|wire.FlagCredit {
			n, err := wire.ParseCredit(f.Payload)
			if err != nil {
				t.Fatalf("credit payload: %v", err)
			}
			u.granted += int(n)
		}
	}
	u.seen = len(u.peer.frames)
	return u.granted
}

func (u *gatherUploader) send(t *testing.T, typ wire.FrameType, payload []byte) {
	t.Helper()
	flags := wire.FlagRequest
	if typ == wire.TypeStart {
		flags |= wire.FlagAll
	}
	f := frame.Frame{Header: wire.Header{Version: wire.Version3, Type: typ, Flags: flags, RequestID: u.id,
		ClientID: u.m.ID(), ChannelID: u.m.Channel(), Sequence: u.seq, Length: uint32(len(payload))}, Payload: payload}
	if err := u.m.Handle(f, nil); err != nil {
		t.Fatalf("sender's %v: %v", f.Header, err)
	}
	u.seq++
}

func (u *gatherUploader) pump(t *testing.T) {
	t.Helper()
	credit := wire.InitialRequestCredit + u.credited(t) - u.sent
	if credit <= 0 {
		return
	}
	n := min(credit, u.chunk)
	u.send(t, wire.TypeChunk, make([]byte, n))
	u.sent += n
}

// windowReader plays a member whose socket writes everything it was
// handed, and whose client then grants all of it, each time it consumes.
type windowReader struct {
	m       *router.Member
	p       *socketPeer
	granted map[wire.ID]int // by the request ID it was handed
	handed  map[wire.ID]int
	seen    int // frames of p already counted in handed
	written int
}

func (rd *windowReader) consume(t *testing.T) {
	t.Helper()
	rd.p.written()
	rd.p.mu.Lock()
	for _, f := range rd.p.frames[rd.seen:] {
		if f.Header.Type == wire.TypeChunk && f.Header.Flags == wire.FlagReceive {
			rd.handed[f.Header.RequestID] += len(f.Payload)
		}
	}
	rd.seen = len(rd.p.frames)
	rd.p.mu.Unlock()
	rd.written = 0
	for id, n := range rd.handed {
		rd.written += n
		if n -= rd.granted[id]; n > 0 {
			rd.granted[id] += n
			grant := frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagReceive | wire.FlagCredit,
				RequestID: id, ClientID: rd.m.ID(), ChannelID: rd.m.Channel()}, Payload: wire.AppendCredit(nil, uint32(n))}
			if err := rd.m.Handle(grant, nil); err != nil {
				t.Fatalf("member's credit of %d: %v", n, err)
			}
		}
	}
}
