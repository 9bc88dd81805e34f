package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/socketbus/socketbus/internal/wire"
)

// FuzzDecodeHeader feeds ParseHeader arbitrary bytes. It must never panic;
// whatever it accepts must re-encode to exactly the bytes it read and have a
// payload length within MaxFramePayload; whatever it refuses, it refuses
// with a *wire.Error having used no bytes.
func FuzzDecodeHeader(f *testing.F) {
	seeds := []wire.Header{
		{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagJoin, RequestID: reqID, ClientID: clientID, ChannelID: channelID, Final: true},
		{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagRequest, RequestID: reqID, ClientID: clientID, ChannelID: channelID, TimeoutMillis: 30000},
		{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest, RequestID: reqID, ClientID: clientID, ChannelID: channelID, Sequence: 1, Length: wire.MaxFramePayload},
		{Version: wire.Version, Type: wire.TypeEnd, Flags: wire.FlagResponse, RequestID: reqID, ClientID: clientID, ChannelID: channelID, Sequence: wire.MaxSequence, Final: true},
		{Version: wire.Version, Type: wire.TypeError, Flags: 0, Final: true, Length: 20},
		{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagCredit | wire.FlagReceive, RequestID: reqID, ClientID: clientID, ChannelID: channelID, Length: wire.CreditSize},
		{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagPing, RequestID: reqID, ClientID: clientID, ChannelID: channelID, Final: true},
	}
	for i := range seeds {
		b := wire.AppendHeader(nil, &seeds[i])
		f.Add(b)
		f.Add(append(b, "payload"...))
	}
	// Garbage: empty, short, a valid header with one bad field each, noise.
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{0xff}, wire.HeaderSize))
	f.Add(bytes.Repeat([]byte{0x00}, wire.HeaderSize))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" + "padding to be long enough for a header"))
	bad := wire.AppendHeader(nil, &seeds[2])
	bad[64], bad[65], bad[66], bad[67] = 0x00, 0x01, 0x00, 0x01 // length MaxFramePayload+1
	f.Add(bad)
	bad = wire.AppendHeader(nil, &seeds[3])
	bad[60] &^= 0x80 // end without the final bit
	f.Add(bad)
	bad = wire.AppendHeader(nil, &seeds[1])
	bad[0] = 2 // version 2
	f.Add(bad)

	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := wire.ParseHeader(b)
		if err != nil {
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Fatalf("ParseHeader error is %T (%v), want *wire.Error", err, err)
			}
			if n != 0 {
				t.Fatalf("ParseHeader failed but used %d bytes, want 0", n)
			}
			return
		}
		if n != wire.HeaderSize {
			t.Fatalf("ParseHeader used %d bytes, want %d", n, wire.HeaderSize)
		}
		if h.Length > wire.MaxFramePayload {
			t.Fatalf("ParseHeader accepted length %d, want at most %d", h.Length, wire.MaxFramePayload)
		}
		if err := wire.CheckHeader(&h); err != nil {
			t.Fatalf("CheckHeader of a parsed header: got %v, want nil", err)
		}
		if got := wire.AppendHeader(nil, &h); !bytes.Equal(got, b[:wire.HeaderSize]) {
			t.Fatalf("re-encoding:\n got % x\nwant % x", got, b[:wire.HeaderSize])
		}
	})
}
