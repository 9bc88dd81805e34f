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

// Vectors for testdata/frames.json, the shared golden frames (golden_test.go
// checks the whole file; clients/js reads it too): one frame of every form
// of protocol versions 1, 2 and 3, built here with the codec and kept in
// the file under their names, beside the frames written by hand. Their
// payload kinds are the file's (none, bytes, credit, error, join,
// settings) and two for version 3:
//
//	headers   a start frame's payload of v3: a delivery's receiveId, then
//	          a header block (headers) and the body (bodyHex) when whole
//	error3    a v3 error payload: code, appCode, headers, message
//
// A kind bytes payload may name what it holds besides its hex (receiveId,
// bodyHex); a settings payload may give maxPolls, a join payload
// clientKeyHex.
//
// go test ./internal/wire -run TestFrameVectors -update writes these
// vectors into the file (the hand-written frames stay); the test then
// checks that the file holds each as the codec writes it.

var update = flag.Bool("update", false, "write the vectors of vectors_test.go into testdata/frames.json")

const framesFile = "../../testdata/frames.json"

// vector is one frame of testdata/frames.json.
type vector struct {
	Name    string        `json:"name"`
	Hex     string        `json:"hex"`
	Header  vectorHeader  `json:"header"`
	Payload vectorPayload `json:"payload"`
}

type vectorHeader struct {
	Version   uint8  `json:"version"`
	Type      uint8  `json:"type"`
	Flags     uint16 `json:"flags"`
	RequestID string `json:"requestId"`
	ClientID  string `json:"clientId"`
	ChannelID string `json:"channelId"`
	Timeout   uint64 `json:"timeout"`
	Seq       uint32 `json:"seq"`
	Final     bool   `json:"final"`
	Length    uint32 `json:"length"`
}

type vectorPayload struct {
	Kind            string              `json:"kind"`
	Hex             string              `json:"hex,omitempty"`
	Credit          uint32              `json:"credit,omitempty"`
	Code            uint16              `json:"code,omitempty"`
	AppCode         string              `json:"appCode,omitempty"`
	Message         string              `json:"message,omitempty"`
	Token           string              `json:"token,omitempty"`
	ChannelName     string              `json:"channelName,omitempty"`
	ClientKeyHex    string              `json:"clientKeyHex,omitempty"`
	MaxMessageBytes *uint64             `json:"maxMessageBytes,omitempty"`
	MaxPolls        uint32              `json:"maxPolls,omitempty"`
	ReceiveID       string              `json:"receiveId,omitempty"`
	Headers         map[string][]string `json:"headers,omitempty"`
	BodyHex         string              `json:"bodyHex,omitempty"`
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
		add("join with a token", "C→S", "join", join, []byte("s3cret"), &vectorPayload{Token: "s3cret"})
		key := seqID(0xa0)
		add("join with fields", "C→S", "join", join, wire.AppendJoinPayload(nil, "s3cret", "orders", nil),
			&vectorPayload{Token: "s3cret", ChannelName: "orders"})
		add("join with fields and a client key", "C→S", "bytes", join, wire.AppendJoinPayload(nil, "s3cret", "orders", key[:]),
			&vectorPayload{Token: "s3cret", ChannelName: "orders", ClientKeyHex: hex.EncodeToString(key[:])})
		add("join answer", "S→C", "settings", join, []byte{0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 4, 0}, &vectorPayload{MaxMessageBytes: u64(4 << 20), MaxPolls: 1024})
		add("join refused", "S→C", errKind(v), hdr(v, wire.TypeError, wire.FlagJoin, docOther, docClient, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeUnauthorized, Message: "join refused"}),
			&vectorPayload{Code: uint16(wire.CodeUnauthorized), Message: "join refused"})
		add("connection error", "both", errKind(v), hdr(v, wire.TypeError, 0, zero, zero, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeProtocol, Message: "bad frame"}),
			&vectorPayload{Code: uint16(wire.CodeProtocol), Message: "bad frame"})
		add("ping", "both", "none", hdr(v, wire.TypeStart, wire.FlagPing, docOther, docClient, 0, true), nil, nil)
		add("pong", "both", "none", hdr(v, wire.TypeEnd, wire.FlagPing, docOther, docClient, 0, true), nil, nil)
		add("drain notice", "S→C", "none", hdr(v, wire.TypeStart, wire.FlagPing, wire.DrainPingID, docClient, 0, true), nil, nil)

		// Polls, streams, credit and stream errors.
		add("poll", "C→S", "none", hdr(v, wire.TypeStart, wire.FlagReceive, docPoll, docOther, 0, true), nil, nil)
		add("poll withdrawal", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, docPoll, docOther, 0, true), nil, nil)
		add("request chunk", "C→S", "bytes", hdr(v, wire.TypeChunk, wire.FlagRequest, docReq, docClient, 1, false), hello, nil)
		add("request end", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagRequest, docReq, docClient, 2, true), nil, nil)
		add("body chunk delivered", "S→C", "bytes", hdr(v, wire.TypeChunk, wire.FlagReceive, docReq, docClient, 1, false), hello, nil)
		add("body end delivered", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, docReq, docClient, 2, true), nil, nil)
		add("response chunk", "both", "bytes", hdr(v, wire.TypeChunk, wire.FlagResponse, docReq, docOther, 1, false), []byte("HELLO"), nil)
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
			&vectorPayload{Code: uint16(wire.CodeCancelled), Message: "the sender cancelled the request"})
		add("receive error (timeout)", "S→C", errKind(v), hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeTimeout, Message: "the request timed out after 5s"}),
			&vectorPayload{Code: uint16(wire.CodeTimeout), Message: "the request timed out after 5s"})

		if v == 1 {
			add("request start", "C→S", "none", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000), nil, nil)
			add("start acknowledgement", "S→C", "none", hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), nil, nil)
			add("end acknowledgement", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagRequest, docReq, docClient, 2, true), nil, nil)
			add("delivery start", "S→C", "bytes", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
				pollID, &vectorPayload{ReceiveID: uuid.UUID(docPoll).String()})
			add("response start", "both", "none", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false), nil, nil)
			add("failure (remote)", "both", "error", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeRemote, Message: "no such order"}),
				&vectorPayload{Code: uint16(wire.CodeRemote), Message: "no such order"})
			continue
		}
		if v == 2 {
			add("request start (streamed)", "C→S", "none", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000), nil, nil)
			add("whole delivery", "S→C", "bytes", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
				cat(pollID, hello), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String()})
			add("delivery start (streamed)", "S→C", "bytes", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
				pollID, &vectorPayload{ReceiveID: uuid.UUID(docPoll).String()})
			add("pushed whole delivery", "S→C", "bytes", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
				cat(zero[:], hello), &vectorPayload{ReceiveID: uuid.UUID(zero).String()})
			add("whole response", "both", "bytes", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, true), []byte("HELLO"), nil)
			add("response start (streamed)", "both", "none", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false), nil, nil)
			add("push credit", "C→S", "credit", hdr(v, wire.TypeStart, wire.FlagReceive, zero, docOther, 0, true), wire.AppendCredit(nil, 64), &vectorPayload{Credit: 64})
			add("push stop", "C→S", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, zero, docOther, 0, true), nil, nil)
			add("push stop answer", "S→C", "none", hdr(v, wire.TypeEnd, wire.FlagReceive, zero, docOther, 0, true), nil, nil)
			add("push credit refused", "S→C", "error", hdr(v, wire.TypeError, wire.FlagReceive, zero, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeServerClosed, Message: "server is shutting down"}),
				&vectorPayload{Code: uint16(wire.CodeServerClosed), Message: "server is shutting down"})
			add("return", "C→S", "error", hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeReturned, Message: "no handler took it"}), &vectorPayload{Code: uint16(wire.CodeReturned), Message: "no handler took it"})
			add("failure (remote)", "both", "error", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
				errPayload(v, wire.Error{Code: wire.CodeRemote, Message: "no such order"}),
				&vectorPayload{Code: uint16(wire.CodeRemote), Message: "no such order"})
			continue
		}
		// Version 3: header blocks on every start of a request, delivery
		// or response stream, and the v3 error payload.
		add("PROTOCOL.md §23.1: whole request with a header", "C→S", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, true), 5000),
			cat(block(trace), hello), &vectorPayload{Headers: trace, BodyHex: "68656c6c6f"})
		add("whole request without headers", "C→S", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, true), 5000),
			cat(wire.NoHeaders, hello), &vectorPayload{BodyHex: "68656c6c6f"})
		add("request start (streamed) with headers", "C→S", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000),
			block(two), &vectorPayload{Headers: two})
		add("request start (streamed) without headers", "C→S", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagRequest, docReq, docClient, 0, false), 5000),
			wire.NoHeaders, &vectorPayload{})
		add("whole delivery with a header", "S→C", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
			cat(pollID, block(trace), hello), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String(), Headers: trace, BodyHex: "68656c6c6f"})
		add("delivery start (streamed) with headers", "S→C", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, false), 4990),
			cat(pollID, block(two)), &vectorPayload{ReceiveID: uuid.UUID(docPoll).String(), Headers: two})
		add("pushed whole delivery without headers", "S→C", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive, docReq, docClient, 0, true), 4990),
			cat(zero[:], wire.NoHeaders, hello), &vectorPayload{ReceiveID: uuid.UUID(zero).String(), BodyHex: "68656c6c6f"})
		add("whole response with headers", "both", "headers", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, true),
			cat(block(two), []byte("HELLO")), &vectorPayload{Headers: two, BodyHex: "48454c4c4f"})
		add("response start (streamed) without headers", "both", "headers", hdr(v, wire.TypeStart, wire.FlagResponse, docReq, docOther, 0, false),
			wire.NoHeaders, &vectorPayload{})
		add("push credit", "C→S", "credit", hdr(v, wire.TypeStart, wire.FlagReceive, zero, docOther, 0, true), wire.AppendCredit(nil, 64), &vectorPayload{Credit: 64})
		add("return", "C→S", "error3", hdr(v, wire.TypeError, wire.FlagReceive, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeReturned, Message: "no handler took it"}), &vectorPayload{Code: uint16(wire.CodeReturned), Message: "no handler took it"})
		add("PROTOCOL.md §23.2: failure with an application code", "both", "error3", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeRemote, AppCode: "not_found", Message: "no such order"}),
			&vectorPayload{Code: uint16(wire.CodeRemote), AppCode: "not_found", Message: "no such order"})
		add("failure with a code and headers", "both", "error3", hdr(v, wire.TypeError, wire.FlagResponse, docReq, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeRemote, AppCode: "retry_later", Headers: block(map[string][]string{"Retry-After": {"5"}}), Message: "busy"}),
			&vectorPayload{Code: uint16(wire.CodeRemote), AppCode: "retry_later", Headers: map[string][]string{"Retry-After": {"5"}}, Message: "busy"})

		// Gathers and publishes (PROTOCOL.md section 24).
		gathered := func(t wire.FrameType, f wire.Flags, client wire.ID, seq uint32, final bool) wire.Header {
			return hdr(v, t, f|wire.FlagAll, docReq, client, seq, final)
		}
		third := seqID(0xc0)
		members := cat([]byte{0, 0, 0, 2}, docOther[:], third[:])
		add("gather start (whole)", "C→S", "headers", withTimeout(gathered(wire.TypeStart, wire.FlagRequest, docClient, 0, true), 5000),
			cat(block(trace), hello), &vectorPayload{Headers: trace, BodyHex: "68656c6c6f"})
		add("gather start (streamed)", "C→S", "headers", withTimeout(gathered(wire.TypeStart, wire.FlagRequest, docClient, 0, false), 5000),
			wire.NoHeaders, &vectorPayload{})
		add("publish start (whole)", "C→S", "headers", withTimeout(gathered(wire.TypeStart, wire.FlagRequest|wire.FlagPublish, docClient, 0, true), 5000),
			cat(wire.NoHeaders, hello), &vectorPayload{BodyHex: "68656c6c6f"})
		add("gather announcement of two members", "S→C", "bytes", gathered(wire.TypeStart, wire.FlagRequest, docClient, 0, true), members, nil)
		add("member's whole reply", "S→C", "headers", gathered(wire.TypeStart, wire.FlagResponse, docOther, 0, true),
			cat(block(two), []byte("HELLO")), &vectorPayload{Headers: two, BodyHex: "48454c4c4f"})
		add("member's reply start (streamed)", "S→C", "headers", gathered(wire.TypeStart, wire.FlagResponse, third, 0, false), wire.NoHeaders, &vectorPayload{})
		add("member's reply chunk", "S→C", "bytes", gathered(wire.TypeChunk, wire.FlagResponse, third, 1, false), []byte("HELLO"), nil)
		add("member's reply end", "S→C", "none", gathered(wire.TypeEnd, wire.FlagResponse, third, 2, true), nil, nil)
		add("member's failure", "S→C", "error3", gathered(wire.TypeError, wire.FlagResponse, docOther, 0, true),
			errPayload(v, wire.Error{Code: wire.CodeRemote, AppCode: "not_found", Message: "no such order"}),
			&vectorPayload{Code: uint16(wire.CodeRemote), AppCode: "not_found", Message: "no such order"})
		add("member gone", "S→C", "error3", gathered(wire.TypeError, wire.FlagResponse, third, 0, true),
			errPayload(v, wire.Error{Code: wire.CodePeerGone, Message: "the receiver's connection ended before its response was complete"}),
			&vectorPayload{Code: uint16(wire.CodePeerGone), Message: "the receiver's connection ended before its response was complete"})
		add("credit for a member's reply", "C→S", "bytes", gathered(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit, docClient, 0, false),
			cat(wire.AppendCredit(nil, 131072), third[:]), nil)
		add("gather end", "S→C", "bytes", gathered(wire.TypeEnd, wire.FlagRequest, docClient, 0, true), []byte{0, 0, 0, 0}, nil)
		add("publish end, three took it", "S→C", "bytes", gathered(wire.TypeEnd, wire.FlagRequest|wire.FlagPublish, docClient, 0, true), []byte{0, 0, 0, 3}, nil)
		add("published whole delivery", "S→C", "headers", withTimeout(hdr(v, wire.TypeStart, wire.FlagReceive|wire.FlagPublish, docReq, docClient, 0, true), 4990),
			cat(zero[:], wire.NoHeaders, hello), &vectorPayload{ReceiveID: uuid.UUID(zero).String(), BodyHex: "68656c6c6f"})
	}
	return s
}

func errKind(v uint8) string {
	if v >= wire.Version3 {
		return "error3"
	}
	return "error"
}

// toVector encodes a source as the file holds it.
func toVector(s source) vector {
	h := s.h
	h.Length = uint32(len(s.payload))
	frame := append(wire.AppendHeader(nil, &h), s.payload...)
	p := vectorPayload{Kind: s.kind}
	if s.decoded != nil {
		p = *s.decoded
		p.Kind = s.kind
	}
	if s.kind == "bytes" || s.kind == "headers" || s.kind == "error3" {
		p.Hex = hex.EncodeToString(s.payload)
	}
	return vector{
		Name: "v" + string(rune('0'+h.Version)) + " " + s.name,
		Hex:  hex.EncodeToString(frame),
		Header: vectorHeader{
			Version: h.Version, Type: uint8(h.Type), Flags: uint16(h.Flags),
			RequestID: uuid.UUID(h.RequestID).String(), ClientID: uuid.UUID(h.ClientID).String(), ChannelID: uuid.UUID(h.ChannelID).String(),
			Timeout: h.TimeoutMillis, Seq: h.Sequence, Final: h.Final, Length: h.Length,
		},
		Payload: p,
	}
}

// framesDoc is the shared file with its frames kept as they are.
type framesDoc struct {
	Comment string            `json:"comment"`
	Frames  []json.RawMessage `json:"frames"`
	Invalid []json.RawMessage `json:"invalid"`
}

func readFrames(t *testing.T) framesDoc {
	t.Helper()
	raw, err := os.ReadFile(framesFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc framesDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", framesFile, err)
	}
	return doc
}

func frameName(t *testing.T, raw json.RawMessage) string {
	var f struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Name
}

func TestFrameVectors(t *testing.T) {
	var want []vector
	names := map[string]bool{}
	for _, s := range sources() {
		v := toVector(s)
		if names[v.Name] {
			t.Fatalf("two vectors named %q", v.Name)
		}
		names[v.Name] = true
		want = append(want, v)
	}
	if *update {
		doc := readFrames(t)
		var kept []json.RawMessage
		for _, f := range doc.Frames {
			if !names[frameName(t, f)] {
				kept = append(kept, f) // written by hand
			}
		}
		for _, v := range want {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, b)
		}
		doc.Frames = kept
		b, err := json.MarshalIndent(doc, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(framesFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inFile := map[string]vector{}
	for _, raw := range readFrames(t).Frames {
		var v vector
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		inFile[v.Name] = v
	}
	for _, v := range want {
		got, ok := inFile[v.Name]
		if !ok {
			t.Errorf("%s: not in %s; go test ./internal/wire -run TestFrameVectors -update writes it", v.Name, framesFile)
			continue
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%s: the file has\n%+v\nthe codec writes\n%+v", v.Name, got, v)
		}
	}
}

// checkV3Payload decodes a frame of kind headers or error3 and compares
// what the file states (golden_test.go calls it for every such frame).
func checkV3Payload(t *testing.T, name string, h wire.Header, p []byte, want vectorPayload) {
	t.Helper()
	got := vectorPayload{Kind: want.Kind, Hex: hex.EncodeToString(p)}
	var err error
	switch want.Kind {
	case "headers":
		if h.Flags&^wire.FlagPublish == wire.FlagReceive { // a delivery: its receive ID first
			got.ReceiveID = uuid.UUID(p[:16]).String()
			p = p[16:]
		}
		var hb map[string][]string
		var n int
		hb, n, err = wire.ParseHeaderBlock(p, wire.MaxHeaderBlock)
		if err == nil {
			got.Headers = hb
			got.BodyHex = hex.EncodeToString(p[n:])
		}
	case "error3":
		var e *wire.Error
		e, err = wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock)
		if err == nil {
			got.Code, got.AppCode, got.Message = uint16(e.Code), e.AppCode, e.Message
			if len(e.Headers) > 0 {
				got.Headers, _, err = wire.ParseHeaderBlock(e.Headers, wire.MaxHeaderBlock)
			}
			enc := wire.AppendErrorVersion(nil, h.Version, e)
			if !bytes.Equal(enc, p) {
				t.Errorf("%s: wire.AppendErrorVersion = %x, want %x", name, enc, p)
			}
		}
	}
	if err != nil {
		t.Errorf("%s: decoding the %s payload: %v", name, want.Kind, err)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: payload decodes to %+v, want %+v", name, got, want)
	}
}

// TestProtocolExamplesAreVectors: every frame PROTOCOL.md shows in hex is
// a frame of testdata/frames.json, byte for byte (and so decodes as the
// file says).
func TestProtocolExamplesAreVectors(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, raw := range readFrames(t).Frames {
		var v vector
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		known[v.Hex] = true
	}
	blocks := regexp.MustCompile("(?s)```\n([0-9a-f \n]+)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d hex examples in PROTOCOL.md, want at least 4", len(blocks))
	}
	for _, b := range blocks {
		h := strings.Join(strings.Fields(b[1]), "")
		if !known[h] {
			t.Errorf("PROTOCOL.md's example\n%s\nis not a frame of testdata/frames.json", b[1])
		}
	}
}
