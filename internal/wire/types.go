package wire

import (
	"strconv"
	"strings"
)

// FrameType is the header's type byte.
type FrameType uint8

// The frame types of protocol v1.
const (
	TypeStart FrameType = 1 // opens a stream, or carries a control message
	TypeChunk FrameType = 2 // carries body bytes, or a credit grant
	TypeEnd   FrameType = 3 // closes a stream; always has the final bit
	TypeError FrameType = 4 // carries an error code and message
)

// Valid reports whether t is one of the v1 frame types.
func (t FrameType) Valid() bool { return t >= TypeStart && t <= TypeError }

// String returns the lower-case name of the type, or "type(N)" when unknown.
func (t FrameType) String() string {
	switch t {
	case TypeStart:
		return "start"
	case TypeChunk:
		return "chunk"
	case TypeEnd:
		return "end"
	case TypeError:
		return "error"
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Flags is the header's 16-bit flag field.
type Flags uint16

// The flags of protocol v1. Request, receive and response are the seed's
// three routing flags; join, credit and ping are the control flags socketbus
// adds. A frame with any other bit set is a protocol error.
const (
	FlagRequest  Flags = 0x0001 // a request stream, between its sender and the server
	FlagJoin     Flags = 0x0002 // joining a channel
	FlagReceive  Flags = 0x0004 // asking for a request, or a request delivered to its receiver
	FlagResponse Flags = 0x0008 // a response stream
	FlagCredit   Flags = 0x0010 // a flow-control credit grant for a stream
	FlagPing     Flags = 0x0020 // a keepalive ping (start) or pong (end)

	// KnownFlags is every flag bit v1 defines.
	KnownFlags = FlagRequest | FlagJoin | FlagReceive | FlagResponse | FlagCredit | FlagPing

	// FlagAll (version 3) marks a request that goes to every member of
	// the channel, a gather or a publish, and the frames of its replies
	// (docs/PROTOCOL.md section 24).
	FlagAll Flags = 0x0040
	// FlagPublish (version 3) marks a publish: with FlagAll on the
	// sender's start, and alone with FlagReceive on the delivery of a
	// published request, which wants no reply.
	FlagPublish Flags = 0x0080

	// KnownFlagsV3 is every flag bit version 3 defines.
	KnownFlagsV3 = KnownFlags | FlagAll | FlagPublish
)

// Has reports whether every bit of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String lists the set flags joined by "|", e.g. "request|credit".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	names := []struct {
		flag Flags
		name string
	}{
		{FlagRequest, "request"}, {FlagJoin, "join"}, {FlagReceive, "receive"},
		{FlagResponse, "response"}, {FlagCredit, "credit"}, {FlagPing, "ping"},
		{FlagAll, "all"}, {FlagPublish, "publish"},
	}
	var parts []string
	rest := f
	for _, n := range names {
		if f&n.flag != 0 {
			parts = append(parts, n.name)
			rest &^= n.flag
		}
	}
	if rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(parts, "|")
}
