package wire_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// The shared test vectors (testdata/frames.json at the module's root): one
// frame of every form of protocol versions 1, 2 and 3, the examples of
// docs/PROTOCOL.md among them, for this codec and for clients in other
// languages. Each vector gives the frame's bytes in hex, its header's
// fields decoded, its payload in hex, and what the payload holds, by kind:
//
//	none          no payload
//	token         a join's payload as it is (the token)
//	join_fields   a join's payload with fields: token, channel name, client key
//	join_ack      the server's MaxMessageBytes (8 bytes), its limit on a
//	              connection's polls, held requests and push credit (4)
//	credit        a 4-byte credit grant (or push credit count)
//	body          the body (whole frames of v2, chunks)
//	delivery      a 16-byte receive ID, then the body (a whole delivery)
//	error         code (2 bytes), then the message (v1, v2)
//	error_v3      code, application code, header block, message (v3)
//	start_v3      a header block, then the body (a whole frame's)
//	delivery_v3   a receive ID, a header block, then the body
//
// go test ./internal/wire -run TestFrameVectors -update rewrites the file
// from the table below; the test then checks the file both ways.

var update = flag.Bool("update", false, "rewrite testdata/frames.json from the vectors in golden_test.go")

const framesFile = "../../testdata/frames.json"

// vector is one entry of testdata/frames.json.
type vector struct {
	Name       string         `json:"name"`
	Version    uint8          `json:"version"`
	Direction  string         `json:"direction"` // C→S, S→C or both
	Hex        string         `json:"hex"`
	Header     vectorHeader   `json:"header"`
	PayloadHex string         `json:"payload_hex"`
	Kind       string         `json:"kind"`
	Payload    *vectorPayload `json:"payload,omitempty"`
}

type vectorHeader struct {
	Type      string `json:"type"`
	Flags     string `json:"flags"`
	RequestID string `json:"request_id"`
	ClientID  string `json:"client_id"`
	ChannelID string `json:"channel_id"`
	Timeout   uint64 `json:"timeout_ms"`
	Sequence  uint32 `json:"sequence"`
	Final     bool   `json:"final"`
	Length    uint32 `json:"length"`
}

type vectorPayload struct {
	Token           string              `json:"token,omitempty"`
	ChannelName     string              `json:"channel_name,omitempty"`
	ClientKeyHex    string              `json:"client_key_hex,omitempty"`
	MaxMessageBytes *uint64             `json:"max_message_bytes,omitempty"`
	MaxPolls        uint32              `json:"max_polls,omitempty"`
	Credit          uint32              `json:"credit,omitempty"`
	ReceiveID       string              `json:"receive_id,omitempty"`
	Headers         map[string][]string `json:"headers,omitempty"`
	Body            string              `json:"body,omitempty"` // as text when it is
	BodyHex         string              `json:"body_hex,omitempty"`
	Code            uint16              `json:"code,omitempty"`
	CodeName        string              `json:"code_name,omitempty"`
	AppCode         string              `json:"app_code,omitempty"`
	Message         string              `json:"message,omitempty"`
}

// The IDs of PROTOCOL.md's examples.
var (
	docReq     = wire.ID(uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e"))
	docClient  = wire.ID(uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7"))
	docChannel = wire.ChannelFromName("orders")
	docOther   = wire.ID(uuid.MustParse("b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e")) // a second client
	docPoll    = wire.ID(uuid.MustParse("5a1e7c0d-3b9f-4e2a-8c6d-1f0b9a8e7d6c")) // a receive ID
)

// source is a vector as the table gives it: a header and a payload built
// with the codec, and what the payload holds.
type source struct {
	name, dir, kind string
	h               wire.Header
	payload         []byte
	decoded         *vectorPayload
}

func hdr(v uint8, t wire.FrameType, f wire.Flags, id, client wire.ID, seq uint32, final bool) wire.Header {
	return wire.Header{Version: v, Type: t, Flags: f, RequestID: id, ClientID: client, ChannelID: docChannel, Sequence: seq, Final: final}
}

func withTimeout(h wire.Header, ms uint64) wire.Header { h.TimeoutMillis = ms; return h }

func block(h map[string][]string) []byte {
	b, err := wire.AppendHeaderBlock(nil, h)
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func u64(n uint64) *uint64 { return &n }

func errPayload(v uint8, e wire.Error) []byte { return wire.AppendErrorVersion(nil, v, &e) }

func sources() []source {
	var zero wire.ID
	hello := []byte("hello")
	trace := map[string][]string{"Trace-Id": {"4bf92f35"}}
	two := map[string][]string{"Content-Type": {"text/plain"}, "X-Tag": {"one", "two"}}
	pollID := docPoll[:]
	var s []source
	add := func(name, dir, kind string, h wire.Header, p []byte, d *vectorPayload) {
		s = append(s, source{name, dir, kind, h, p, d})
	}
	for _, v := range []uint8{1, 2, 3} {
		// Joining, keepalive and connection-level errors: the same forms
		// in every version, in that version's byte.
		join := hdr(v, wire.TypeStart, wire.FlagJoin, docOther, docClient, 0, true)
		add("join with a token", "C→S", "token", join, []byte("s3cret"), &vectorPayload{Token: "s3cret"})
		key := seqID(0xa0)
		add("join with fields", "C→S", "join_fields", join, wire.AppendJoinPayload(nil, "s3cret", "orders", key[:]),
			&vectorPayload{Token: "s3cret", ChannelName: "orders", ClientKeyHex: hex.EncodeToString(key[:])})
		add("join answer", "S→C", "join_ack", join, []byte{0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 4, 0}, &vectorPayload{MaxMessageBytes: u64(4 << 20), MaxPolls: 1024})
		add("join refused", "S→C", errKind(v), hdr(v, wire.TypeError, wire.FlagJoin, docOther, docClient, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeUnauthorized, Message: "join refused"}),
			&vectorPayload{Code: uint16(wire.CodeUnauthorized), CodeName: "unauthorized", Message: "join refused"})
		add("connection error", "both", errKind(v), hdr(v, wire.TypeError, 0, zero, zero, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeProtocol, Message: "bad frame"}),
			&vectorPayload{Code: uint16(wire.CodeProtocol), CodeName: "protocol", Message: "bad frame"})
		add("ping", "both", "none", hdr(v, wire.TypeStart, wire.FlagPing, docOther, docClient, 0, true), nil, nil)
		add("pong", "both", "none", hdr(v, wire.TypeEnd, wire.FlagPing, docOther, docClient, 0, true), nil, nil)
		add("drain notice", "S→C", "none", hdr(v, wire.TypeStart, wire.FlagPing, wire.DrainPingID, docClient, 0, true), nil, nil)

		// Polls, streams, credit and stream errors.
		add("poll", "C→S", "none", hdr(v, wire.TypeStart, wire.FlagReceive, docPoll, docOther, 0, true), nil, nil)
		add("poll withdrawal", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, docPoll, docOther, 0, true), nil, nil)
		add("request chunk", "C→S", "body", hdr(v, wire.TypeChunk, wire.FlagRequest, docReq, docClient, 1, false), hello, &vectorPayload{Body: "hello"})
		add("request end", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagRequest, docReq, docClient, 2, true), nil, nil)
		add("body chunk delivered", "S→C", "body", hdr(v, wire.TypeChunk, wire.FlagReceive, docReq, docClient, 1, false), hello, &vectorPayload{Body: "hello"})
		add("body end delivered", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, docReq, docClient, 2, true), nil, nil)
		add("response chunk", "both", "body", hdr(v, wire.TypeChunk, wire.FlagResponse, docReq, docOther, 1, false), []byte("HELLO"), &vectorPayload{Body: "HELLO"})
		add("response end", "both", "none", hdr(v, wire.TypeEnd, wire.FlagResponse, docReq, docOther, 2, true), nil, nil)
		for _, c := range []struct {
			name  string
			flags wire.Flags
			dir   string
		}{{"credit for a request body", wire.FlagRequest, "S→C"}, {"credit for a delivered body", wire.FlagReceive, "C→S"}, {"credit for a response", wire.FlagResponse, "both"}} {
			add(c.name, c.dir, "credit", hdr(v, wire.TypeChunk, c.flags|wire.FlagCredit, docReq, docClient, 0, false),
				wire.AppendCredit(nil, 245760), &vectorPayload{Credit: 245760})
		}
		add("request error (cancelled)", "both", errKind(v), hdr(v, wire.TypeError, wire.FlagRequest, docReq, docClient, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeCancelled, Message: "the sender cancelled the request"}),
			&vectorPayload{Code: uint16(wire.CodeCancelled), CodeName: "cancelled", Message: "the sender cancelled the request"})
		add("receive error (timeout)", "S→C", errKind(v), hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeTimeout, Message: "the request timed out after 5s"}),
			&vectorPayload{Code: uint16(wire.CodeTimeout), CodeName: "timeout", Message: "the request timed out after 5s"})

		if v == 1 {
			add("request start", "C→S", "none", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000), nil, nil)
			add("start acknowledgement", "S→C", "none", hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), nil, nil)
			add("end acknowledgement", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagRequest, docReq, docClient, 2, true), nil, nil)
			add("delivery start", "S→C", "delivery", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
				pollID, &vectorPayload{ReceiveID: uuid.UUID(docPoll).String()})
			add("response start", "both", "none", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false), nil, nil)
			add("failure (remote)", "both", "error", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeRemote, Message: "no such order"}),
				&vectorPayload{Code: uint16(wire.CodeRemote), CodeName: "remote", Message: "no such order"})
			// Section 3's example.
			add("PROTOCOL.md §3: request end", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagRequest, docReq, docClient, 2, true), nil, nil)
			continue
		}
		if v == 2 {
			add("PROTOCOL.md §20.1: whole request", "C→S", "body", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, true), 5000),
				hello, &vectorPayload{Body: "hello"})
			add("request start (streamed)", "C→S", "none", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000), nil, nil)
			add("whole delivery", "S→C", "delivery", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
				cat(pollID, hello), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String(), Body: "hello"})
			add("delivery start (streamed)", "S→C", "delivery", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
				pollID, &vectorPayload{ReceiveID: uuid.UUID(docPoll).String()})
			add("pushed whole delivery", "S→C", "delivery", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
				cat(zero[:], hello), &vectorPayload{ReceiveID: uuid.UUID(zero).String(), Body: "hello"})
			add("whole response", "both", "body", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, true), []byte("HELLO"), &vectorPayload{Body: "HELLO"})
			add("response start (streamed)", "both", "none", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false), nil, nil)
			add("push credit", "C→S", "credit", hdr(v, wire.TypeStart, wire.FlagReceive, zero, docOther, 0, true), wire.AppendCredit(nil, 64), &vectorPayload{Credit: 64})
			add("push stop", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, zero, docOther, 0, true), nil, nil)
			add("push stop answer", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, zero, docOther, 0, true), nil, nil)
			add("push credit refused", "S→C", "error", hdr(v, wire.TypeError, wire.FlagReceive, zero, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeServerClosed, Message: "server is shutting down"}),
				&vectorPayload{Code: uint16(wire.CodeServerClosed), CodeName: "server_closed", Message: "server is shutting down"})
			add("return", "C→S", "error", hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeReturned}), &vectorPayload{Code: uint16(wire.CodeReturned), CodeName: "returned"})
			add("failure (remote)", "both", "error", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeRemote, Message: "no such order"}),
				&vectorPayload{Code: uint16(wire.CodeRemote), CodeName: "remote", Message: "no such order"})
			continue
		}
		// Version 3: header blocks on every start of a request, delivery
		// or response stream, and the v3 error payload.
		add("PROTOCOL.md §22.1: whole request with a header", "C→S", "start_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, true), 5000),
			cat(block(trace), hello), &vectorPayload{Headers: trace, Body: "hello"})
		add("whole request without headers", "C→S", "start_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, true), 5000),
			cat(wire.NoHeaders, hello), &vectorPayload{Body: "hello"})
		add("request start (streamed) with headers", "C→S", "start_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000),
			block(two), &vectorPayload{Headers: two})
		add("request start (streamed) without headers", "C→S", "start_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000),
			wire.NoHeaders, &vectorPayload{})
		add("whole delivery with a header", "S→C", "delivery_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
			cat(pollID, block(trace), hello), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String(), Headers: trace, Body: "hello"})
		add("delivery start (streamed) with headers", "S→C", "delivery_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
			cat(pollID, block(two)), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String(), Headers: two})
		add("pushed whole delivery without headers", "S→C", "delivery_v3", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
			cat(zero[:], wire.NoHeaders, hello), &vectorPayload{ReceiveID: uuid.UUID(zero).String(), Body: "hello"})
		add("whole response with headers", "both", "start_v3", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, true),
			cat(block(two), []byte("HELLO")), &vectorPayload{Headers: two, Body: "HELLO"})
		add("response start (streamed) without headers", "both", "start_v3", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false),
			wire.NoHeaders, &vectorPayload{})
		add("push credit", "C→S", "credit", hdr(v, wire.TypeStart, wire.FlagReceive, zero, docOther, 0, true), wire.AppendCredit(nil, 64), &vectorPayload{Credit: 64})
		add("return", "C→S", "error_v3", hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeReturned}), &vectorPayload{Code: uint16(wire.CodeReturned), CodeName: "returned"})
		add("PROTOCOL.md §22.2: failure with an application code", "both", "error_v3", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeRemote, AppCode: "not_found", Message: "no such order"}),
			&vectorPayload{Code: uint16(wire.CodeRemote), CodeName: "remote", AppCode: "not_found", Message: "no such order"})
		add("failure with a code and headers", "both", "error_v3", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeRemote, AppCode: "retry_later", Headers: block(map[string][]string{"Retry-After": {"5"}}), Message: "busy"}),
			&vectorPayload{Code: uint16(wire.CodeRemote), CodeName: "remote", AppCode: "retry_later", Headers: map[string][]string{"Retry-After": {"5"}}, Message: "busy"})
	}
	return s
}

func errKind(v uint8) string {
	if v >= wire.Version3 {
		return "error_v3"
	}
	return "error"
}

// toVector encodes a source as the file holds it.
func toVector(s source) vector {
	h := s.h
	h.Length = uint32(len(s.payload))
	frame := append(wire.AppendHeader(nil, &h), s.payload...)
	return vector{
		Name: s.name, Version: h.Version, Direction: s.dir, Kind: s.kind,
		Hex: hex.EncodeToString(frame),
		Header: vectorHeader{
			Type: h.Type.String(), Flags: h.Flags.String(),
			RequestID: uuid.UUID(h.RequestID).String(), ClientID: uuid.UUID(h.ClientID).String(), ChannelID: uuid.UUID(h.ChannelID).String(),
			Timeout: h.TimeoutMillis, Sequence: h.Sequence, Final: h.Final, Length: h.Length,
		},
		PayloadHex: hex.EncodeToString(s.payload),
		Payload:    s.decoded,
	}
}

func TestFrameVectors(t *testing.T) {
	var want []vector
	for _, s := range sources() {
		want = append(want, toVector(s))
	}
	if *update {
		b, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(framesFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(framesFile)
	if err != nil {
		t.Fatalf("reading the vectors (go test -run TestFrameVectors -update writes them): %v", err)
	}
	var got []vector
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", framesFile, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s is not what the codec writes for the vectors; run go test ./internal/wire -run TestFrameVectors -update and review the diff", framesFile)
	}
	for _, v := range got {
		t.Run(v.Name+"/v"+string(rune('0'+v.Version)), func(t *testing.T) { checkVector(t, v) })
	}
}

// checkVector decodes a vector's bytes with the codec and compares every
// field the file states.
func checkVector(t *testing.T, v vector) {
	frame, err := hex.DecodeString(v.Hex)
	if err != nil {
		t.Fatalf("hex: %v", err)
	}
	h, n, err := wire.ParseHeader(frame)
	if err != nil {
		t.Fatalf("ParseHeader: %v", err)
	}
	gotHeader := vectorHeader{
		Type: h.Type.String(), Flags: h.Flags.String(),
		RequestID: uuid.UUID(h.RequestID).String(), ClientID: uuid.UUID(h.ClientID).String(), ChannelID: uuid.UUID(h.ChannelID).String(),
		Timeout: h.TimeoutMillis, Sequence: h.Sequence, Final: h.Final, Length: h.Length,
	}
	if h.Version != v.Version || gotHeader != v.Header {
		t.Fatalf("header: got v%d %+v, want v%d %+v", h.Version, gotHeader, v.Version, v.Header)
	}
	p := frame[n:]
	if int(h.Length) != len(p) || hex.EncodeToString(p) != v.PayloadHex {
		t.Fatalf("payload: got %d bytes %x, want %d bytes %s", len(p), p, h.Length, v.PayloadHex)
	}
	got := &vectorPayload{}
	switch v.Kind {
	case "none":
		if len(p) != 0 {
			t.Fatalf("payload of %d bytes, want none", len(p))
		}
		got = nil
	case "token":
		got.Token = string(p)
	case "join_fields":
		var key []byte
		got.Token, got.ChannelName, key, err = wire.ParseJoinPayload(p, h.ChannelID)
		got.ClientKeyHex = hex.EncodeToString(key)
	case "join_ack":
		m := uint64(0)
		for _, b := range p[:8] {
			m = m<<8 | uint64(b)
		}
		got.MaxMessageBytes = &m
		if len(p) >= 12 {
			got.MaxPolls = uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11])
		}
	case "credit":
		got.Credit, err = wire.ParseCredit(p)
	case "body":
		got.Body = string(p)
	case "delivery", "delivery_v3":
		got.ReceiveID = uuid.UUID(p[:16]).String()
		p = p[16:]
		if v.Kind == "delivery_v3" {
			p, err = headersInto(got, p)
		}
		got.Body = string(p)
	case "start_v3":
		p, err = headersInto(got, p)
		got.Body = string(p)
	case "error", "error_v3":
		var e *wire.Error
		e, err = wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock)
		if err == nil {
			got.Code, got.CodeName, got.AppCode, got.Message = uint16(e.Code), e.Code.String(), e.AppCode, e.Message
			if len(e.Headers) > 0 {
				_, err = headersInto(got, e.Headers)
			}
		}
	default:
		t.Fatalf("unknown kind %q", v.Kind)
	}
	if err != nil {
		t.Fatalf("decoding the %s payload: %v", v.Kind, err)
	}
	if !reflect.DeepEqual(got, v.Payload) {
		t.Fatalf("payload decodes to %+v, want %+v", got, v.Payload)
	}
}

// headersInto reads the header block at the front of p into d and returns
// what follows it.
func headersInto(d *vectorPayload, p []byte) ([]byte, error) {
	h, n, err := wire.ParseHeaderBlock(p, wire.MaxHeaderBlock)
	if err != nil {
		return nil, err
	}
	d.Headers = h
	return p[n:], nil
}

// TestProtocolExamplesAreVectors: every frame PROTOCOL.md shows in hex is
// one of the vectors, byte for byte (and so decodes as the vector says).
func TestProtocolExamplesAreVectors(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range sources() {
		known[toVector(s).Hex] = true
	}
	blocks := regexp.MustCompile("(?s)```\n([0-9a-f \n]+)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d hex examples in PROTOCOL.md, want at least 3", len(blocks))
	}
	for _, b := range blocks {
		h := strings.Join(strings.Fields(b[1]), "")
		if !known[h] {
			t.Errorf("PROTOCOL.md's example\n%s\nis not a vector of testdata/frames.json", b[1])
		}
	}
}
