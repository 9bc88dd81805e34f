package router

import (
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// header returns a v1 header addressed to member to on channel ch.
func header(ch *channel, to *Member, t wire.FrameType, flags wire.Flags, id wire.ID) wire.Header {
	return wire.Header{Version: wire.Version, Type: t, Flags: flags, RequestID: id, ClientID: to.id, ChannelID: ch.id}
}

func errorFrame(ch *channel, to *Member, id wire.ID, flags wire.Flags, code wire.Code, msg string) frameconn.Frame {
	return frameconn.ErrorFrame(header(ch, to, wire.TypeError, flags, id), code, msg)
}

// creditFrame grants n bytes of credit to member to for stream id.
func creditFrame(ch *channel, to *Member, id wire.ID, flags wire.Flags, n int) frameconn.Frame {
	return frameconn.Frame{
		Header:  header(ch, to, wire.TypeChunk, flags|wire.FlagCredit, id),
		Payload: wire.AppendCredit(frameconn.GetBuffer(wire.CreditSize)[:0], uint32(n)),
		Pooled:  true,
	}
}

// send hands f to member to's connection, within the channel's current
// batch if a frame from a connection is being handled.
func (ch *channel) send(to *Member, f frameconn.Frame) {
	to.peer.Send(f, ch.batch)
}

func release(f *frameconn.Frame) {
	if f.Pooled {
		frameconn.PutBuffer(f.Payload)
		f.Payload, f.Pooled = nil, false
	}
}

func protocolErrorf(format string, args ...any) error {
	return wire.Errorf(wire.CodeProtocol, format, args...)
}

// tombstones remembers recently ended request IDs, so that frames a peer
// sent before it learned of the end are dropped rather than taken for
// forgeries. A peer stops within one round trip, so a bounded ring is enough.
type tombstones struct {
	set  map[wire.ID]struct{}
	ring []wire.ID
	next int
}

const tombstoneCapacity = 1024

func (t *tombstones) add(id wire.ID) {
	if t.set == nil {
		t.set = make(map[wire.ID]struct{})
	}
	if _, ok := t.set[id]; ok {
		return
	}
	if len(t.ring) < tombstoneCapacity {
		t.ring = append(t.ring, id)
	} else {
		delete(t.set, t.ring[t.next])
		t.ring[t.next] = id
		t.next = (t.next + 1) % tombstoneCapacity
	}
	t.set[id] = struct{}{}
}

func (t *tombstones) has(id wire.ID) bool {
	_, ok := t.set[id]
	return ok
}
