package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// sharedFrames is testdata/frames.json at the repository's root, which the
// TypeScript client's codec tests read too (clients/js/test/wire.test.mjs).
type sharedFrames struct {
	Frames []struct {
		Name   string `json:"name"`
		Hex    string `json:"hex"`
		Header struct {
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
		} `json:"header"`
		Payload struct {
			Kind            string    `json:"kind"`
			Hex             string    `json:"hex"`
			Credit          uint32    `json:"credit"`
			Code            wire.Code `json:"code"`
			Message         string    `json:"message"`
			Token           string    `json:"token"`
			ChannelName     string    `json:"channelName"`
			ClientKeyHex    string    `json:"clientKeyHex"`
			MaxMessageBytes uint64    `json:"maxMessageBytes"`
			MaxPolls        uint32    `json:"maxPolls"`
		} `json:"payload"`
	} `json:"frames"`
	Invalid []struct {
		Name string    `json:"name"`
		Hex  string    `json:"hex"`
		Code wire.Code `json:"code"`
	} `json:"invalid"`
}

// TestSharedGoldenFrames: every frame of the shared golden file decodes to its
// fields and encodes back to its bytes, its payload reads as stated, and
// every invalid header is refused with its code.
func TestSharedGoldenFrames(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/frames.json")
	if err != nil {
		t.Fatal(err)
	}
	var g sharedFrames
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("testdata/frames.json: %v", err)
	}
	var v3 struct {
		Frames []vector `json:"frames"` // the payload fields of version 3 (vectors_test.go)
	}
	if err := json.Unmarshal(raw, &v3); err != nil {
		t.Fatalf("testdata/frames.json: %v", err)
	}
	if len(g.Frames) == 0 || len(g.Invalid) == 0 {
		t.Fatalf("testdata/frames.json has %d frames and %d invalid headers, want some of each", len(g.Frames), len(g.Invalid))
	}
	for i, f := range g.Frames {
		b, err := hex.DecodeString(f.Hex)
		if err != nil {
			t.Fatalf("%s: hex: %v", f.Name, err)
		}
		want := wire.Header{Version: f.Header.Version, Type: wire.FrameType(f.Header.Type), Flags: wire.Flags(f.Header.Flags),
			RequestID: uuid.MustParse(f.Header.RequestID), ClientID: uuid.MustParse(f.Header.ClientID),
			ChannelID: uuid.MustParse(f.Header.ChannelID), TimeoutMillis: f.Header.Timeout,
			Sequence: f.Header.Seq, Final: f.Header.Final, Length: f.Header.Length}
		got, n, err := wire.ParseHeader(b)
		if err != nil || n != wire.HeaderSize || got != want {
			t.Errorf("%s: wire.ParseHeader = %v, %d, %v; want %v, %d, nil", f.Name, got, n, err, want, wire.HeaderSize)
		}
		if enc := wire.AppendHeader(nil, &want); !bytes.Equal(enc, b[:wire.HeaderSize]) {
			t.Errorf("%s: wire.AppendHeader = %x, want %x", f.Name, enc, b[:wire.HeaderSize])
		}
		p := b[wire.HeaderSize:]
		if uint32(len(p)) != want.Length {
			t.Errorf("%s: %d payload bytes, want the header's %d", f.Name, len(p), want.Length)
		}
		switch k := f.Payload.Kind; k {
		case "none":
			if len(p) != 0 {
				t.Errorf("%s: payload %x, want none", f.Name, p)
			}
		case "bytes":
			if hex.EncodeToString(p) != f.Payload.Hex {
				t.Errorf("%s: payload %x, want %s", f.Name, p, f.Payload.Hex)
			}
		case "credit":
			if n, err := wire.ParseCredit(p); err != nil || n != f.Payload.Credit {
				t.Errorf("%s: wire.ParseCredit = %d, %v; want %d", f.Name, n, err, f.Payload.Credit)
			}
		case "error":
			e, err := wire.ParseError(p)
			if err != nil || e.Code != f.Payload.Code || e.Message != f.Payload.Message {
				t.Errorf("%s: wire.ParseError = %v, %v; want code %d, message %q", f.Name, e, err, f.Payload.Code, f.Payload.Message)
			}
			if enc := wire.AppendError(nil, f.Payload.Code, f.Payload.Message); !bytes.Equal(enc, p) {
				t.Errorf("%s: wire.AppendError = %x, want %x", f.Name, enc, p)
			}
		case "join":
			tok, name, key, err := wire.ParseJoinPayload(p, want.ChannelID)
			if err != nil || tok != f.Payload.Token || name != f.Payload.ChannelName || hex.EncodeToString(key) != f.Payload.ClientKeyHex {
				t.Errorf("%s: wire.ParseJoinPayload = %q, %q, %x, %v; want %q, %q, %s", f.Name, tok, name, key, err, f.Payload.Token, f.Payload.ChannelName, f.Payload.ClientKeyHex)
			}
			if enc := wire.AppendJoinPayload(nil, f.Payload.Token, f.Payload.ChannelName, key); !bytes.Equal(enc, p) {
				t.Errorf("%s: wire.AppendJoinPayload = %x, want %x", f.Name, enc, p)
			}
		case "settings":
			if len(p) < 8 || binary.BigEndian.Uint64(p) != f.Payload.MaxMessageBytes {
				t.Errorf("%s: settings %x, want MaxMessageBytes %d", f.Name, p, f.Payload.MaxMessageBytes)
			}
			if polls := f.Payload.MaxPolls; polls != 0 && (len(p) < 12 || binary.BigEndian.Uint32(p[8:]) != polls) {
				t.Errorf("%s: settings %x, want the poll limit %d at offset 8", f.Name, p, polls)
			}
		case "headers", "error3":
			checkV3Payload(t, f.Name, want, p, v3.Frames[i].Payload)
		default:
			t.Errorf("%s: unknown payload kind %q", f.Name, k)
		}
	}
	for _, f := range g.Invalid {
		b, err := hex.DecodeString(f.Hex)
		if err != nil {
			t.Fatalf("%s: hex: %v", f.Name, err)
		}
		_, _, err = wire.ParseHeader(b)
		var werr *wire.Error
		if !errors.As(err, &werr) || werr.Code != f.Code {
			t.Errorf("%s: wire.ParseHeader error = %v, want code %d", f.Name, err, f.Code)
		}
	}
}
