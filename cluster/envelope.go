package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Every message from one node to another goes to the subject
// socketbus.<bus>.to.<destination>.<source> and starts with an envelope:
// its kind (a byte) and the link's sequence number (8 bytes, big-endian,
// from 1, one per message from that source to that destination). What
// follows depends on the kind; docs/PROTOCOL.md section 21 has the table.
const (
	kindFrame     byte = 1  // role, a 68-byte header, its payload
	kindPing      byte = 2  // role, the header of a tombstone ping
	kindPong      byte = 3  // role, the header of the ping it answers
	kindState     byte = 4  // token, then per channel: ID, members, ready
	kindAck       byte = 5  // the token of the state it acknowledges
	kindHeartbeat byte = 6  // nothing: the sequence number is the news
	kindReset     byte = 7  // a nonce: the link lost messages
	kindResetAck  byte = 8  // the nonce of the reset it answers
	kindBye       byte = 9  // the node is leaving the bus
	kindClaim     byte = 10 // token, channel, client ID, key hash: a join asks (clientids.go)
	kindClaimed   byte = 11 // the claim's token, then 1 if the ID is refused, 0 if not
	kindDirect    byte = 12 // a connection's ID: the link goes on there (direct.go)
)

// Roles, in frame messages: which remote member on the destination node
// the frame is for.
const (
	toReceiver byte = 1 // the destination's remote receiver for the source
	toSender   byte = 2 // the destination's remote sender for the source
)

// ackAnswersClaims, in an ack's flags byte, says the node answers claims
// on client IDs (clientids.go). A node without it sent acks of 8 bytes
// and ignores claims: joins elsewhere do not wait for its answer.
const ackAnswersClaims byte = 1

const envelopeSize = 1 + 8

// stateEntrySize is one channel in a state message: ID, members, ready.
const stateEntrySize = 16 + 4 + 4

// maxStateEntries bounds one state message, well under NATS's 1 MB
// max_payload: more channels go in several.
const maxStateEntries = 16 << 10

// channelState is what a node says it has on one channel.
type channelState struct {
	channel wire.ID
	members int // connections joined to the channel on that node
	ready   int // its receivers waiting: Receive polls and push credit
}

func appendEnvelope(b []byte, kind byte, seq uint64) []byte {
	b = append(b, kind)
	return binary.BigEndian.AppendUint64(b, seq)
}

// appendFrameHead appends a frame message's body up to the payload: the
// role and the frame's header (the payload follows it).
func appendFrameHead(b []byte, role byte, f *frame.Frame) []byte {
	b = append(b, role)
	h := f.Header
	h.Length = uint32(len(f.Payload))
	return wire.AppendHeader(b, &h)
}

func appendState(b []byte, token uint64, states []channelState) []byte {
	b = binary.BigEndian.AppendUint64(b, token)
	b = binary.BigEndian.AppendUint32(b, uint32(len(states)))
	for _, s := range states {
		b = append(b, s.channel[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(s.members))
		b = binary.BigEndian.AppendUint32(b, uint32(s.ready))
	}
	return b
}

var errShort = errors.New("cluster: short message")

// parseEnvelope splits a message into its kind, sequence number and body.
func parseEnvelope(data []byte) (kind byte, seq uint64, body []byte, err error) {
	if len(data) < envelopeSize {
		return 0, 0, nil, errShort
	}
	return data[0], binary.BigEndian.Uint64(data[1:9]), data[envelopeSize:], nil
}

// parseFrame decodes a frame message's body. The payload stays in the
// message's buffer, which nats.go made for this message alone: the router
// keeps a large chunk in the buffer it came in (it charges its capacity)
// and copies small ones into its coalescing buffers, as it does a frame
// read from a socket, so a copy here would be one more of the 64 KiB
// copies a chunk costs between nodes.
func parseFrame(body []byte) (role byte, f frame.Frame, err error) {
	return parseFramePayload(body, nil)
}

// parseFramePayload is parseFrame for a message whose payload, when not
// nil, came in a pooled buffer of its own: the frame takes it (Pooled),
// or it is released on an error.
func parseFramePayload(body, pooled []byte) (role byte, f frame.Frame, err error) {
	if pooled != nil {
		defer func() {
			if err != nil {
				frame.PutBuffer(pooled)
			}
		}()
		if len(body) != 1+wire.HeaderSize {
			return 0, f, errShort
		}
	}
	if len(body) < 1+wire.HeaderSize {
		return 0, f, errShort
	}
	role = body[0]
	h, _, err := wire.ParseHeader(body[1:])
	if err != nil {
		return 0, f, fmt.Errorf("cluster: frame header: %w", err)
	}
	payload := body[1+wire.HeaderSize:]
	if pooled != nil {
		payload = pooled
	}
	if int(h.Length) != len(payload) {
		return 0, f, fmt.Errorf("cluster: frame of %d bytes says %d", len(payload), h.Length)
	}
	f.Header = h
	switch {
	case pooled != nil:
		f.Payload, f.Pooled = pooled, true
	case len(payload) > 0:
		f.Payload = payload[:len(payload):len(payload)]
	}
	return role, f, nil
}

func parseState(body []byte) (token uint64, states []channelState, err error) {
	if len(body) < 12 {
		return 0, nil, errShort
	}
	token = binary.BigEndian.Uint64(body)
	n := int(binary.BigEndian.Uint32(body[8:]))
	body = body[12:]
	if n > maxStateEntries || len(body) != n*stateEntrySize {
		return 0, nil, fmt.Errorf("cluster: state of %d bytes for %d channels", len(body), n)
	}
	states = make([]channelState, n)
	for i := range states {
		e := body[i*stateEntrySize:]
		copy(states[i].channel[:], e[:16])
		states[i].members = int(binary.BigEndian.Uint32(e[16:]))
		states[i].ready = int(binary.BigEndian.Uint32(e[20:]))
	}
	return token, states, nil
}

func parseUint64(body []byte) (uint64, error) {
	if len(body) < 8 {
		return 0, errShort
	}
	return binary.BigEndian.Uint64(body), nil
}
