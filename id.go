package socketbus

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// ID identifies a client, a channel or a request: a UUID.
type ID = uuid.UUID

// MaxFramePayload is the largest payload one frame carries. Bodies of any
// size are streamed as many frames.
const MaxFramePayload = wire.MaxFramePayload

// ParseID parses an ID in its text form, such as
// "55c41d59-48f3-54ed-88a3-a83ba985561d".
func ParseID(s string) (ID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("socketbus: parse ID %q: %w", s, err)
	}
	return id, nil
}

// ChannelFromName returns the channel ID for a human-readable name: the UUID
// v5 of name in socketbus's channel namespace. The same name always gives
// the same ID, in every process and every language.
func ChannelFromName(name string) ID { return ID(wire.ChannelFromName(name)) }

// newID returns a random (version 4) UUID for a request or a Receive. It
// draws from math/rand/v2's global generator, a ChaCha8 stream seeded from
// the operating system's entropy, which is unpredictable to other clients
// and, unlike uuid.New, costs no system call.
func newID() ID {
	var id ID
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}
