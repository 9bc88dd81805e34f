package router

import (
	"unicode/utf8"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// header returns a header addressed to member to on channel ch, in the
// protocol version to joined with.
func header(ch *channel, to *Member, t wire.FrameType, flags wire.Flags, id wire.ID) wire.Header {
	return wire.Header{Version: to.version, Type: t, Flags: flags, RequestID: id, ClientID: to.id, ChannelID: ch.id}
}

func errorFrame(ch *channel, to *Member, id wire.ID, flags wire.Flags, code wire.Code, msg string) frame.Frame {
	return frame.ErrorFrame(header(ch, to, wire.TypeError, flags, id), code, msg)
}

// creditFrame grants n bytes of credit to member to for stream id.
func creditFrame(ch *channel, to *Member, id wire.ID, flags wire.Flags, n int) frame.Frame {
	return frame.Frame{
		Header:  header(ch, to, wire.TypeChunk, flags|wire.FlagCredit, id),
		Payload: wire.AppendCredit(frame.GetBuffer(wire.CreditSize)[:0], uint32(n)),
		Pooled:  true,
	}
}

// send hands f to member to's connection, within the channel's current
// batch if a frame from a connection is being handled.
func (ch *channel) send(to *Member, f frame.Frame) {
	to.peer.Send(f, ch.batch)
}

// take moves f out to a caller that keeps it, leaving f empty so that
// Member.Handle's release finds nothing to free.
func take(f *frame.Frame) frame.Frame {
	kept := *f
	*f = frame.Frame{}
	return kept
}

func protocolErrorf(format string, args ...any) error {
	return wire.Errorf(wire.CodeProtocol, format, args...)
}

// maxRelayedMessage caps the message of an error the server relays from
// one client to another (a cancel's reason, a Fail's text): those frames
// go to a connection that did not cause them, so their size must not be
// the sender's to choose.
const maxRelayedMessage = 1 << 10

// relayedMessage cuts msg to maxRelayedMessage bytes, on a UTF-8 boundary.
func relayedMessage(msg string) string {
	if len(msg) <= maxRelayedMessage {
		return msg
	}
	cut := maxRelayedMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut]
}
