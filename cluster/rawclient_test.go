package cluster_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
)

// rawClient is the shared raw peer joined to a node, so that a test can
// choose its request IDs: an attacker's view of a node.
type rawClient struct {
	*testpeer.Conn
	t *testing.T
}

// dialRawClient connects to node n, joins channel in protocol version 1
// and reads the join's acknowledgement. Every read and write fails after
// 20 s.
func dialRawClient(t *testing.T, n *testNode, channel string) *rawClient {
	t.Helper()
	return dialRawVersion(t, n, channel, wire.Version)
}

// dialRawVersion is dialRawClient in the given protocol version.
func dialRawVersion(t *testing.T, n *testNode, channel string, version uint8) *rawClient {
	t.Helper()
	c := testpeer.Dial(t, n.addr)
	_ = c.NC.SetDeadline(time.Now().Add(20 * time.Second))
	c.Version = version
	if err := c.JoinChannel(socketbus.ChannelFromName(channel), nil); err != nil {
		t.Fatalf("raw join on %s: %v", n.name, err)
	}
	return &rawClient{Conn: c, t: t}
}

func newRawID() wire.ID {
	var id wire.ID
	_, _ = rand.Read(id[:])
	return id
}

// write sends one frame.
func (c *rawClient) write(typ wire.FrameType, flags wire.Flags, id wire.ID, seq uint32, final bool, payload []byte) {
	c.t.Helper()
	h := c.Header(typ, flags, id)
	h.Sequence, h.Final = seq, final
	c.WriteFrame(h, payload)
}

// send sends a whole request with the given ID: start, one chunk, end.
func (c *rawClient) send(id wire.ID, body string) {
	c.t.Helper()
	c.write(wire.TypeStart, wire.FlagRequest, id, 0, false, nil)
	c.write(wire.TypeChunk, wire.FlagRequest, id, 1, false, []byte(body))
	c.write(wire.TypeEnd, wire.FlagRequest, id, 2, true, nil)
}

// waitEnd reads until request id ends: its error frame, or the end of
// its response. It returns the error (nil for a response).
func (c *rawClient) waitEnd(id wire.ID) *wire.Error {
	c.t.Helper()
	for {
		h, p := c.Read()
		if h.RequestID != id {
			continue
		}
		switch {
		case h.Type == wire.TypeError:
			e, err := wire.ParseError(p)
			if err != nil {
				c.t.Fatalf("raw read: error frame: %v", err)
			}
			return e
		case h.Type == wire.TypeEnd && h.Flags == wire.FlagResponse:
			return nil
		}
	}
}
