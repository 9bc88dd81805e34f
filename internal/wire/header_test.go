package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/socketbus/socketbus/internal/wire"
)

// Test IDs whose bytes count up, so a field written in the wrong place or
// the wrong byte order shows in the golden bytes.
var (
	reqID     = seqID(0x10)
	clientID  = seqID(0x20)
	channelID = seqID(0x30)
)

func seqID(first byte) wire.ID {
	var id wire.ID
	for i := range id {
		id[i] = first + byte(i)
	}
	return id
}

// unhex decodes hex split into readable groups by spaces.
func unhex(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(parts, ""), " ", ""))
	if err != nil {
		t.Fatalf("bad golden hex: %v", err)
	}
	return b
}

// The ID fields as they appear in every golden frame below.
const (
	reqHex     = "10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f"
	clientHex  = "20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f"
	channelHex = "30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f"
)

func TestHeaderSize(t *testing.T) {
	if wire.HeaderSize != 68 {
		t.Fatalf("HeaderSize = %d, want 68", wire.HeaderSize)
	}
	h := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagRequest}
	if got := len(wire.AppendHeader(nil, &h)); got != 68 {
		t.Fatalf("len(AppendHeader) = %d, want 68", got)
	}
	if wire.MaxFramePayload != 65536 {
		t.Fatalf("MaxFramePayload = %d, want 65536", wire.MaxFramePayload)
	}
}

// goldenFrames are one frame of each type, encoded by hand from the layout
// in docs/PROTOCOL.md: header fields in order, big-endian, then payload.
func goldenFrames(t *testing.T) []struct {
	name    string
	header  wire.Header
	payload []byte
	bytes   []byte
} {
	base := func(typ wire.FrameType, flags wire.Flags) wire.Header {
		return wire.Header{Version: wire.Version, Type: typ, Flags: flags,
			RequestID: reqID, ClientID: clientID, ChannelID: channelID}
	}
	start := base(wire.TypeStart, wire.FlagRequest)
	start.TimeoutMillis = 1500

	chunk := base(wire.TypeChunk, wire.FlagRequest)
	chunk.Sequence = 1
	chunk.Length = 5

	end := base(wire.TypeEnd, wire.FlagRequest)
	end.Sequence = 2
	end.Final = true

	errPayload := wire.AppendError(nil, wire.CodeTimeout, "timed out")
	errFrame := base(wire.TypeError, wire.FlagRequest)
	errFrame.Final = true
	errFrame.Length = uint32(len(errPayload))

	creditPayload := wire.AppendCredit(nil, 0x4000)
	credit := base(wire.TypeChunk, wire.FlagCredit|wire.FlagResponse)
	credit.Length = wire.CreditSize

	// Version 2 (docs/PROTOCOL.md section 20): a whole request, push
	// credit (zero request ID) and a return.
	whole := base(wire.TypeStart, wire.FlagRequest)
	whole.Version, whole.TimeoutMillis, whole.Final, whole.Length = wire.Version2, 5000, true, 5
	push := base(wire.TypeStart, wire.FlagReceive)
	push.Version, push.RequestID, push.Final, push.Length = wire.Version2, wire.ID{}, true, wire.CreditSize
	returnPayload := wire.AppendError(nil, wire.CodeReturned, "")
	ret := base(wire.TypeError, wire.FlagReceive)
	ret.Version, ret.Final, ret.Length = wire.Version2, true, uint32(len(returnPayload))

	return []struct {
		name    string
		header  wire.Header
		payload []byte
		bytes   []byte
	}{
		{"start", start, nil, unhex(t,
			"01", "01", "00 01", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 05 dc", // timeout 1500 ms
			"00 00 00 00",             // sequence 0
			"00 00 00 00",             // length 0
		)},
		{"chunk", chunk, []byte("hello"), unhex(t,
			"01", "02", "00 01", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"00 00 00 01",
			"00 00 00 05",
			hex.EncodeToString([]byte("hello")),
		)},
		{"end", end, nil, unhex(t,
			"01", "03", "00 01", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"80 00 00 02", // final bit and sequence 2
			"00 00 00 00",
		)},
		{"error", errFrame, errPayload, unhex(t,
			"01", "04", "00 01", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"80 00 00 00",
			"00 00 00 0b",
			"00 07", // code 7, timeout
			hex.EncodeToString([]byte("timed out")),
		)},
		{"credit", credit, creditPayload, unhex(t,
			"01", "02", "00 18", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"00 00 00 00",
			"00 00 00 04",
			"00 00 40 00", // 16384 bytes of credit
		)},
		{"v2 whole request", whole, []byte("hello"), unhex(t,
			"02", "01", "00 01", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 13 88", // timeout 5000 ms
			"80 00 00 00",             // final bit, sequence 0: the whole stream
			"00 00 00 05",
			hex.EncodeToString([]byte("hello")),
		)},
		{"v2 push credit", push, wire.AppendCredit(nil, 64), unhex(t,
			"02", "01", "00 04", "00000000000000000000000000000000", clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"80 00 00 00",
			"00 00 00 04",
			"00 00 00 40", // 64 requests
		)},
		{"v2 return", ret, returnPayload, unhex(t,
			"02", "04", "00 04", reqHex, clientHex, channelHex,
			"00 00 00 00 00 00 00 00",
			"80 00 00 00",
			"00 00 00 02",
			"00 10", // code 16, returned
		)},
	}
}

func TestGoldenFrames(t *testing.T) {
	for _, tc := range goldenFrames(t) {
		t.Run(tc.name, func(t *testing.T) {
			got := append(wire.AppendHeader(nil, &tc.header), tc.payload...)
			if !bytes.Equal(got, tc.bytes) {
				t.Fatalf("encoding:\n got % x\nwant % x", got, tc.bytes)
			}
			h, n, err := wire.ParseHeader(tc.bytes)
			if err != nil {
				t.Fatalf("ParseHeader: got error %v, want nil", err)
			}
			if n != wire.HeaderSize {
				t.Fatalf("ParseHeader used %d bytes, want %d", n, wire.HeaderSize)
			}
			if h != tc.header {
				t.Fatalf("ParseHeader:\n got %+v\nwant %+v", h, tc.header)
			}
			if p := tc.bytes[n:]; len(p) != int(h.Length) {
				t.Fatalf("payload after header is %d bytes, header says %d", len(p), h.Length)
			}
		})
	}
}

func TestGoldenPayloads(t *testing.T) {
	e, err := wire.ParseError(unhex(t, "00 07", hex.EncodeToString([]byte("timed out"))))
	if err != nil {
		t.Fatalf("ParseError: got error %v, want nil", err)
	}
	if e.Code != wire.CodeTimeout || e.Message != "timed out" {
		t.Fatalf("ParseError = {%v %q}, want {timeout %q}", e.Code, e.Message, "timed out")
	}
	n, err := wire.ParseCredit(unhex(t, "00 00 40 00"))
	if err != nil || n != 0x4000 {
		t.Fatalf("ParseCredit = %d, %v; want 16384, nil", n, err)
	}

	bad := []struct {
		name    string
		payload []byte
		parse   func([]byte) error
	}{
		{"error/empty", nil, parseErrorErr},
		{"error/one byte", []byte{0}, parseErrorErr},
		{"error/bad utf-8", []byte{0, 1, 0xff, 0xfe}, parseErrorErr},
		{"credit/short", []byte{0, 0, 1}, parseCreditErr},
		{"credit/long", []byte{0, 0, 0, 1, 0}, parseCreditErr},
		{"credit/zero", []byte{0, 0, 0, 0}, parseCreditErr},
	}
	for _, tc := range bad {
		err := tc.parse(tc.payload)
		var werr *wire.Error
		if !errors.As(err, &werr) || werr.Code != wire.CodeProtocol {
			t.Errorf("%s: got error %v, want a *wire.Error with code protocol", tc.name, err)
		}
	}
}

func parseErrorErr(p []byte) error  { _, err := wire.ParseError(p); return err }
func parseCreditErr(p []byte) error { _, err := wire.ParseCredit(p); return err }

func TestErrorMessageCut(t *testing.T) {
	long := strings.Repeat("x", wire.MaxFramePayload+100)
	p := wire.AppendError(nil, wire.CodeProtocol, long)
	if len(p) != wire.MaxFramePayload {
		t.Fatalf("error payload for an over-long message is %d bytes, want %d", len(p), wire.MaxFramePayload)
	}
}

// validCombos lists every type and flags pair v1 allows.
var validCombos = []struct {
	typ   wire.FrameType
	flags wire.Flags
}{
	{wire.TypeStart, wire.FlagRequest}, {wire.TypeChunk, wire.FlagRequest}, {wire.TypeEnd, wire.FlagRequest}, {wire.TypeError, wire.FlagRequest},
	{wire.TypeStart, wire.FlagReceive}, {wire.TypeChunk, wire.FlagReceive}, {wire.TypeEnd, wire.FlagReceive}, {wire.TypeError, wire.FlagReceive},
	{wire.TypeStart, wire.FlagResponse}, {wire.TypeChunk, wire.FlagResponse}, {wire.TypeEnd, wire.FlagResponse}, {wire.TypeError, wire.FlagResponse},
	{wire.TypeStart, wire.FlagJoin}, {wire.TypeError, wire.FlagJoin},
	{wire.TypeStart, wire.FlagPing}, {wire.TypeEnd, wire.FlagPing},
	{wire.TypeChunk, wire.FlagCredit | wire.FlagRequest},
	{wire.TypeChunk, wire.FlagCredit | wire.FlagReceive},
	{wire.TypeChunk, wire.FlagCredit | wire.FlagResponse},
	{wire.TypeError, 0},
}

// randomHeader returns a random header that v1 accepts.
func randomHeader(r *rand.Rand) wire.Header {
	c := validCombos[r.IntN(len(validCombos))]
	h := wire.Header{
		Version:       wire.Version,
		Type:          c.typ,
		Flags:         c.flags,
		TimeoutMillis: r.Uint64(),
		Sequence:      r.Uint32N(wire.MaxSequence + 1),
		Final:         r.IntN(2) == 0 || c.typ == wire.TypeEnd,
		Length:        r.Uint32N(wire.MaxFramePayload + 1),
	}
	for _, id := range []*wire.ID{&h.RequestID, &h.ClientID, &h.ChannelID} {
		for i := range id {
			id[i] = byte(r.Uint32())
		}
	}
	return h
}

func TestHeaderRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		h := randomHeader(r)
		prefix := []byte("prefix")
		b := wire.AppendHeader(prefix, &h)
		if !bytes.Equal(b[:len(prefix)], []byte("prefix")) {
			t.Fatalf("AppendHeader changed the bytes before it: got %q, want %q", b[:len(prefix)], "prefix")
		}
		if len(b) != len(prefix)+wire.HeaderSize {
			t.Fatalf("AppendHeader added %d bytes, want %d", len(b)-len(prefix), wire.HeaderSize)
		}
		got, n, err := wire.ParseHeader(append(b[len(prefix):], "trailing payload"...))
		if err != nil {
			t.Fatalf("ParseHeader(%v): got error %v, want nil", h, err)
		}
		if n != wire.HeaderSize {
			t.Fatalf("ParseHeader used %d bytes, want %d", n, wire.HeaderSize)
		}
		if got != h {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, h)
		}
		var put [wire.HeaderSize]byte
		wire.PutHeader(put[:], &h)
		if !bytes.Equal(put[:], b[len(prefix):]) {
			t.Fatalf("PutHeader = % x, want AppendHeader's % x", put, b[len(prefix):])
		}
	}
}

func TestParseHeaderTruncated(t *testing.T) {
	for _, tc := range goldenFrames(t) {
		full := tc.bytes[:wire.HeaderSize]
		for i := 0; i < wire.HeaderSize; i++ {
			h, n, err := wire.ParseHeader(full[:i])
			var werr *wire.Error
			if !errors.As(err, &werr) || werr.Code != wire.CodeProtocol {
				t.Fatalf("%s: ParseHeader of %d bytes: got error %v, want a *wire.Error with code protocol", tc.name, i, err)
			}
			if n != 0 {
				t.Fatalf("%s: ParseHeader of %d bytes used %d bytes, want 0", tc.name, i, n)
			}
			if h != (wire.Header{}) {
				t.Fatalf("%s: ParseHeader of %d bytes returned header %+v, want the zero header", tc.name, i, h)
			}
		}
	}
}

func TestCheckHeaderRejects(t *testing.T) {
	valid := func() wire.Header {
		return wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest,
			RequestID: reqID, ClientID: clientID, ChannelID: channelID, Sequence: 1, Length: 10}
	}
	tests := []struct {
		name   string
		modify func(h *wire.Header)
		code   wire.Code
	}{
		{"version 0", func(h *wire.Header) { h.Version = 0 }, wire.CodeBadVersion},
		{"version 4", func(h *wire.Header) { h.Version = 4 }, wire.CodeBadVersion},
		{"version 255", func(h *wire.Header) { h.Version = 255 }, wire.CodeBadVersion},
		{"type 0", func(h *wire.Header) { h.Type = 0 }, wire.CodeProtocol},
		{"type 5", func(h *wire.Header) { h.Type = 5 }, wire.CodeProtocol},
		{"type 255", func(h *wire.Header) { h.Type = 255 }, wire.CodeProtocol},
		{"unknown flag 0x0040", func(h *wire.Header) { h.Flags |= 0x0040 }, wire.CodeProtocol},
		{"unknown flag 0x8000", func(h *wire.Header) { h.Flags = 0x8000 }, wire.CodeProtocol},
		{"all flags", func(h *wire.Header) { h.Flags = 0xffff }, wire.CodeProtocol},
		{"length MaxFramePayload+1", func(h *wire.Header) { h.Length = wire.MaxFramePayload + 1 }, wire.CodeTooLarge},
		{"length 2^32-1", func(h *wire.Header) { h.Length = 1<<32 - 1 }, wire.CodeTooLarge},
		{"end without final", func(h *wire.Header) { h.Type = wire.TypeEnd; h.Final = false }, wire.CodeProtocol},
		{"no flags on a chunk", func(h *wire.Header) { h.Flags = 0 }, wire.CodeProtocol},
		{"request and response", func(h *wire.Header) { h.Flags = wire.FlagRequest | wire.FlagResponse }, wire.CodeProtocol},
		{"request and receive", func(h *wire.Header) { h.Flags = wire.FlagRequest | wire.FlagReceive }, wire.CodeProtocol},
		{"join on a chunk", func(h *wire.Header) { h.Flags = wire.FlagJoin }, wire.CodeProtocol},
		{"join on an end", func(h *wire.Header) { h.Type, h.Final, h.Flags = wire.TypeEnd, true, wire.FlagJoin }, wire.CodeProtocol},
		{"ping on a chunk", func(h *wire.Header) { h.Flags = wire.FlagPing }, wire.CodeProtocol},
		{"ping on an error", func(h *wire.Header) { h.Type, h.Flags = wire.TypeError, wire.FlagPing }, wire.CodeProtocol},
		{"credit alone", func(h *wire.Header) { h.Flags = wire.FlagCredit }, wire.CodeProtocol},
		{"credit on a start", func(h *wire.Header) { h.Type, h.Flags = wire.TypeStart, wire.FlagCredit|wire.FlagRequest }, wire.CodeProtocol},
		{"credit on an end", func(h *wire.Header) {
			h.Type, h.Final, h.Flags = wire.TypeEnd, true, wire.FlagCredit|wire.FlagResponse
		}, wire.CodeProtocol},
		{"credit with join", func(h *wire.Header) { h.Flags = wire.FlagCredit | wire.FlagJoin }, wire.CodeProtocol},
		{"no flags on a start", func(h *wire.Header) { h.Type, h.Flags = wire.TypeStart, 0 }, wire.CodeProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := valid()
			tc.modify(&h)
			err := wire.CheckHeader(&h)
			var werr *wire.Error
			if !errors.As(err, &werr) {
				t.Fatalf("CheckHeader(%v): got error %v, want a *wire.Error with code %v", h, err, tc.code)
			}
			if werr.Code != tc.code {
				t.Fatalf("CheckHeader(%v): got code %v (%v), want %v", h, werr.Code, werr, tc.code)
			}
			if werr.Message == "" {
				t.Fatalf("CheckHeader(%v): got an empty message, want an explanation", h)
			}
			// ParseHeader refuses the same header from its encoding.
			b := wire.AppendHeader(nil, &h)
			_, n, perr := wire.ParseHeader(b)
			if !errors.As(perr, &werr) || werr.Code != tc.code || n != 0 {
				t.Fatalf("ParseHeader: got n=%d, error %v; want n=0, code %v", n, perr, tc.code)
			}
		})
	}

	// Every valid combination passes, at the length limit too.
	for _, c := range validCombos {
		h := valid()
		h.Type, h.Flags, h.Length = c.typ, c.flags, wire.MaxFramePayload
		h.Final = c.typ == wire.TypeEnd
		if err := wire.CheckHeader(&h); err != nil {
			t.Errorf("CheckHeader(%v): got error %v, want nil", h, err)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{wire.TypeStart.String(), "start"},
		{wire.TypeChunk.String(), "chunk"},
		{wire.TypeEnd.String(), "end"},
		{wire.TypeError.String(), "error"},
		{wire.FrameType(0).String(), "type(0)"},
		{wire.FrameType(9).String(), "type(9)"},

		{wire.Flags(0).String(), "none"},
		{wire.FlagRequest.String(), "request"},
		{wire.FlagJoin.String(), "join"},
		{wire.FlagReceive.String(), "receive"},
		{wire.FlagResponse.String(), "response"},
		{wire.FlagCredit.String(), "credit"},
		{wire.FlagPing.String(), "ping"},
		{(wire.FlagRequest | wire.FlagCredit).String(), "request|credit"},
		{(wire.FlagResponse | 0x8000).String(), "response|0x8000"},
		{wire.Flags(0x0140).String(), "all|0x100"},

		{wire.CodeProtocol.String(), "protocol"},
		{wire.CodeBadVersion.String(), "bad_version"},
		{wire.CodeTooLarge.String(), "too_large"},
		{wire.CodeUnauthorized.String(), "unauthorized"},
		{wire.CodeConflict.String(), "conflict"},
		{wire.CodeNoPeers.String(), "no_peers"},
		{wire.CodeTimeout.String(), "timeout"},
		{wire.CodePeerGone.String(), "peer_gone"},
		{wire.CodeCancelled.String(), "cancelled"},
		{wire.CodeAborted.String(), "aborted"},
		{wire.CodeRemote.String(), "remote"},
		{wire.CodeServerClosed.String(), "server_closed"},
		{wire.CodeLimit.String(), "limit"},
		{wire.CodeIdle.String(), "idle"},
		{wire.Code(0).String(), "code(0)"},
		{wire.Code(999).String(), "code(999)"},

		{wire.Errorf(wire.CodeNoPeers, "alone on %s", "chan").Error(), "no_peers: alone on chan"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if !wire.KnownFlags.Has(wire.FlagPing | wire.FlagRequest) {
		t.Errorf("KnownFlags.Has(ping|request) = false, want true")
	}
	if wire.FlagRequest.Has(wire.FlagRequest | wire.FlagCredit) {
		t.Errorf("FlagRequest.Has(request|credit) = true, want false")
	}
}
