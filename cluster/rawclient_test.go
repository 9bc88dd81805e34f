package cluster_test

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// rawClient is a client that speaks protocol version 1 by hand, so a test
// can choose its request IDs: an attacker's view of a node.
type rawClient struct {
	t       *testing.T
	nc      net.Conn
	br      *bufio.Reader
	id      wire.ID
	channel wire.ID
	version uint8
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
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc), channel: socketbus.ChannelFromName(channel), version: version}
	_, _ = rand.Read(c.id[:])
	join := newRawID()
	c.write(wire.TypeStart, wire.FlagJoin, join, 0, true, nil)
	h, p := c.read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin || h.RequestID != join {
		t.Fatalf("raw join on %s: got %v %q, want the acknowledgement", n.name, h, p)
	}
	return c
}

func newRawID() wire.ID {
	var id wire.ID
	_, _ = rand.Read(id[:])
	return id
}

func (c *rawClient) write(typ wire.FrameType, flags wire.Flags, id wire.ID, seq uint32, final bool, payload []byte) {
	c.t.Helper()
	h := wire.Header{Version: c.version, Type: typ, Flags: flags, RequestID: id, ClientID: c.id,
		ChannelID: c.channel, Sequence: seq, Final: final, Length: uint32(len(payload))}
	if _, err := c.nc.Write(append(wire.AppendHeader(nil, &h), payload...)); err != nil {
		c.t.Fatalf("raw write: %v", err)
	}
}

// send sends a whole request with the given ID: start, one chunk, end.
func (c *rawClient) send(id wire.ID, body string) {
	c.t.Helper()
	c.write(wire.TypeStart, wire.FlagRequest, id, 0, false, nil)
	c.write(wire.TypeChunk, wire.FlagRequest, id, 1, false, []byte(body))
	c.write(wire.TypeEnd, wire.FlagRequest, id, 2, true, nil)
}

// read reads the next frame that is not a tombstone ping.
func (c *rawClient) read() (wire.Header, []byte) {
	for {
		h, p := c.readAny()
		if h.Flags != wire.FlagPing {
			return h, p
		}
	}
}

func (c *rawClient) readAny() (wire.Header, []byte) {
	c.t.Helper()
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		c.t.Fatalf("raw read: %v", err)
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		c.t.Fatalf("raw read: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.t.Fatalf("raw read: %v", err)
	}
	return h, p
}

// waitEnd reads until request id ends: its error frame, or the end of
// its response. It returns the error (nil for a response).
func (c *rawClient) waitEnd(id wire.ID) *wire.Error {
	c.t.Helper()
	for {
		h, p := c.read()
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

func (c *rawClient) String() string { return fmt.Sprintf("raw client %x", c.id[:4]) }
