package testpeer

import (
	"io"
	"net"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// StalledJoin opens a raw connection, joins channel and asks for n
// requests, then never reads its socket again.
func StalledJoin(t testing.TB, addr string, channel uuid.UUID, polls int) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	client := uuid.New()
	join := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: client, ChannelID: channel, Final: true}
	if _, err := nc.Write(wire.AppendHeader(nil, &join)); err != nil {
		t.Fatalf("join: %v", err)
	}
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatalf("join ack: %v", err)
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil || h.Type != wire.TypeStart || h.Flags != wire.FlagJoin {
		t.Fatalf("join ack: %v %v", h, err)
	}
	if _, err := io.CopyN(io.Discard, nc, int64(h.Length)); err != nil {
		t.Fatalf("join ack payload: %v", err)
	}
	var buf []byte
	for range polls {
		p := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagReceive,
			RequestID: uuid.New(), ClientID: client, ChannelID: channel, Final: true}
		buf = wire.AppendHeader(buf, &p)
	}
	// A ping after the polls: its pong proves the server has registered
	// them all (it reads a connection's frames in order).
	ping := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagPing,
		ClientID: client, ChannelID: channel, Final: true}
	buf = wire.AppendHeader(buf, &ping)
	if _, err := nc.Write(buf); err != nil {
		t.Fatalf("polls: %v", err)
	}
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatalf("pong: %v", err)
	}
	if h, _, err := wire.ParseHeader(hdr[:]); err != nil || h.Flags != wire.FlagPing || h.Type != wire.TypeEnd {
		t.Fatalf("got %v (%v), want the pong", h, err)
	}
	return nc
}
