package wire_test

import (
	"testing"

	"github.com/socketbus/socketbus/internal/wire"
)

// benchHeader is a typical chunk header: every ID set, a timeout, a
// sequence and a full payload.
var benchHeader = wire.Header{
	Version:       wire.Version,
	Type:          wire.TypeChunk,
	Flags:         wire.FlagRequest,
	RequestID:     wire.ID{0: 1, 15: 2},
	ClientID:      wire.ID{0: 3, 15: 4},
	ChannelID:     wire.ID{0: 5, 15: 6},
	TimeoutMillis: 30000,
	Sequence:      7,
	Length:        wire.MaxFramePayload,
}

// sink keeps results alive so that the compiler cannot drop the work.
var sink wire.Header

// BenchmarkAppendHeader encodes into a reused slice with room for the
// header, as a writer reusing its buffer does.
func BenchmarkAppendHeader(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(wire.HeaderSize)
	buf := make([]byte, 0, wire.HeaderSize)
	h := benchHeader
	for b.Loop() {
		buf = wire.AppendHeader(buf[:0], &h)
	}
	if len(buf) != wire.HeaderSize {
		b.Fatalf("got %d bytes, want %d", len(buf), wire.HeaderSize)
	}
}

// BenchmarkPutHeader encodes into a reused fixed-size buffer, as the
// connection writer does.
func BenchmarkPutHeader(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(wire.HeaderSize)
	var buf [wire.HeaderSize]byte
	h := benchHeader
	for b.Loop() {
		wire.PutHeader(buf[:], &h)
	}
	if buf[0] != wire.Version {
		b.Fatalf("got version byte %d, want %d", buf[0], wire.Version)
	}
}

// BenchmarkParseHeader decodes and validates a header, as the connection
// reader does for every frame.
func BenchmarkParseHeader(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(wire.HeaderSize)
	buf := wire.AppendHeader(nil, &benchHeader)
	for b.Loop() {
		h, n, err := wire.ParseHeader(buf)
		if err != nil || n != wire.HeaderSize {
			b.Fatalf("ParseHeader = %d, %v; want %d, nil", n, err, wire.HeaderSize)
		}
		sink = h
	}
	if sink != benchHeader {
		b.Fatalf("got %v, want %v", sink, benchHeader)
	}
}
