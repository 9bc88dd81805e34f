package wire

import (
	"encoding/binary"
	"fmt"
)

// Header layout: every field's offset and the total size, in bytes.
const (
	offVersion   = 0
	offType      = 1
	offFlags     = 2
	offRequestID = 4
	offClientID  = 20
	offChannelID = 36
	offTimeout   = 52
	offSequence  = 60
	offLength    = 64

	// HeaderSize is the length of every frame header.
	HeaderSize = 68
)

// Version is protocol version 1, the version a frame has unless its
// connection joined with Version2.
const Version = 1

// Version2 is protocol version 2 (docs/PROTOCOL.md, section 20): version 1
// plus whole-message frames, pushed requests and no acknowledgements. The
// version byte of a connection's join picks the version every frame on it
// carries, in both directions.
const Version2 = 2

// Version3 is protocol version 3 (docs/PROTOCOL.md, "Version 3"): version
// 2 plus a header block on the start frame of every request, delivery and
// response stream, and error payloads with an application code and the
// response's header block.
const Version3 = 3

// MaxVersion is the newest protocol version this codec speaks.
const MaxVersion = Version3

// KnownVersion reports whether v is a protocol version this codec speaks.
func KnownVersion(v uint8) bool { return v >= Version && v <= MaxVersion }

// MaxFramePayload is the largest payload one frame may carry.
const MaxFramePayload = 65536

// finalBit marks the last frame of a stream in the sequence field.
const finalBit = 1 << 31

// MaxSequence is the largest sequence number a stream may use.
const MaxSequence = finalBit - 1

// ID is a 16-byte identifier: a UUID in the header's ID fields.
type ID = [16]byte

// Header is a decoded frame header. The zero value is not a valid header;
// build one with the fields a frame needs and Version set to wire.Version.
type Header struct {
	Version   uint8
	Type      FrameType
	Flags     Flags
	RequestID ID
	ClientID  ID
	ChannelID ID
	// TimeoutMillis is the request's timeout in milliseconds; 0 means the
	// server's default.
	TimeoutMillis uint64
	// Sequence is the frame's position in its stream, without the final bit.
	Sequence uint32
	// Final marks the last frame of a stream (bit 31 of the sequence field).
	Final bool
	// Length is the number of payload bytes that follow the header.
	Length uint32
}

// String formats the header for logs and test failures.
func (h Header) String() string {
	fin := ""
	if h.Final {
		fin = " final"
	}
	return fmt.Sprintf("v%d %s %s req=%x client=%x chan=%x timeout=%dms seq=%d%s len=%d",
		h.Version, h.Type, h.Flags, h.RequestID[:4], h.ClientID[:4], h.ChannelID[:4],
		h.TimeoutMillis, h.Sequence, fin, h.Length)
}

// AppendHeader appends the 68-byte encoding of h to b and returns the result.
// It encodes the fields as they are; CheckHeader says whether they are valid.
func AppendHeader(b []byte, h *Header) []byte {
	var buf [HeaderSize]byte
	PutHeader(buf[:], h)
	return append(b, buf[:]...)
}

// PutHeader writes the 68-byte encoding of h into b, which must be at least
// HeaderSize long.
func PutHeader(b []byte, h *Header) {
	_ = b[HeaderSize-1] // one bounds check for all the writes below
	b[offVersion] = h.Version
	b[offType] = byte(h.Type)
	binary.BigEndian.PutUint16(b[offFlags:], uint16(h.Flags))
	copy(b[offRequestID:offClientID], h.RequestID[:])
	copy(b[offClientID:offChannelID], h.ClientID[:])
	copy(b[offChannelID:offTimeout], h.ChannelID[:])
	binary.BigEndian.PutUint64(b[offTimeout:], h.TimeoutMillis)
	seq := h.Sequence & MaxSequence
	if h.Final {
		seq |= finalBit
	}
	binary.BigEndian.PutUint32(b[offSequence:], seq)
	binary.BigEndian.PutUint32(b[offLength:], h.Length)
}

// ParseHeader decodes the header at the start of b. It returns the number of
// bytes used (always HeaderSize on success) and, for any header that v1 does
// not accept, an *Error whose code says why. It validates the header alone,
// before a byte of payload is read: in particular a Length over
// MaxFramePayload is refused here, so callers never allocate on its word.
func ParseHeader(b []byte) (Header, int, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, 0, Errorf(CodeProtocol, "short header: %d of %d bytes", len(b), HeaderSize)
	}
	h.Version = b[offVersion]
	h.Type = FrameType(b[offType])
	h.Flags = Flags(binary.BigEndian.Uint16(b[offFlags:]))
	copy(h.RequestID[:], b[offRequestID:offClientID])
	copy(h.ClientID[:], b[offClientID:offChannelID])
	copy(h.ChannelID[:], b[offChannelID:offTimeout])
	h.TimeoutMillis = binary.BigEndian.Uint64(b[offTimeout:])
	seq := binary.BigEndian.Uint32(b[offSequence:])
	h.Sequence = seq & MaxSequence
	h.Final = seq&finalBit != 0
	h.Length = binary.BigEndian.Uint32(b[offLength:])
	if err := CheckHeader(&h); err != nil {
		return h, 0, err
	}
	return h, HeaderSize, nil
}

// CheckHeader reports whether h is a frame v1, v2 or v3 allows, looking
// only at the header: version, type, flags (known bits in an allowed
// combination), the final bit and the payload length. The versions have
// the same header rules; which version a connection speaks is checked by
// the connection.
func CheckHeader(h *Header) error {
	if !KnownVersion(h.Version) {
		return Errorf(CodeBadVersion, "unsupported protocol version %d (this server speaks %d to %d)", h.Version, Version, MaxVersion)
	}
	if !h.Type.Valid() {
		return Errorf(CodeProtocol, "unknown frame type %d", uint8(h.Type))
	}
	known := KnownFlags
	if h.Version >= Version3 {
		known = KnownFlagsV3
	}
	if h.Flags&^known != 0 {
		return Errorf(CodeProtocol, "unknown flags %#04x", uint16(h.Flags&^known))
	}
	if h.Length > MaxFramePayload {
		return Errorf(CodeTooLarge, "payload length %d exceeds the maximum of %d", h.Length, MaxFramePayload)
	}
	if !validCombination(h.Type, h.Flags) {
		return Errorf(CodeProtocol, "flags %s are not allowed on a %s frame", h.Flags, h.Type)
	}
	if h.Type == TypeEnd && !h.Final {
		return Errorf(CodeProtocol, "end frame without the final bit")
	}
	return nil
}

// validCombination says which flags each frame type may carry. Exactly one
// routing or control flag is set, plus FlagCredit on credit grants.
func validCombination(t FrameType, f Flags) bool {
	switch f {
	case FlagRequest, FlagReceive, FlagResponse:
		return true // stream frames, acknowledgements and stream errors of any type
	case FlagJoin:
		return t == TypeStart || t == TypeError
	case FlagPing:
		return t == TypeStart || t == TypeEnd
	case FlagCredit | FlagRequest, FlagCredit | FlagReceive, FlagCredit | FlagResponse:
		return t == TypeChunk
	case 0:
		return t == TypeError // a connection-level error
	case FlagRequest | FlagAll, FlagRequest | FlagAll | FlagPublish:
		// v3: a gather's or publish's start (from its sender), the
		// announcement of its members (start) and its end (end).
		return t == TypeStart || t == TypeEnd
	case FlagResponse | FlagAll:
		return true // v3: one member's reply to a gather
	case FlagResponse | FlagAll | FlagCredit:
		return t == TypeChunk // v3: credit for one member's reply
	case FlagReceive | FlagPublish:
		return t == TypeStart // v3: the delivery of a published request
	case FlagReceive | FlagAll, FlagReceive | FlagAll | FlagPublish:
		return t == TypeStart // v3, between nodes: a gather's part for another node
	}
	return false
}

// DrainPingID is the request ID of the ping with which a server tells a
// client that it is shutting down (docs/PROTOCOL.md section 17): "sbdrain"
// and nine zero bytes. A client that does not know it just answers it.
var DrainPingID = ID{'s', 'b', 'd', 'r', 'a', 'i', 'n'}
