package wire

import (
	"bytes"
	"errors"
	"testing"
)

// TestJoinPayload checks the join payload's encoding: golden bytes, a v1
// token passed through, every truncated prefix refused, unknown fields
// skipped and a name that is not the channel's refused.
func TestJoinPayload(t *testing.T) {
	ch := ChannelFromName("orders")
	golden := []byte("\x00sbj\x01\x00\x03tok\x02\x00\x06orders")
	if got := AppendJoinPayload(nil, "tok", "orders", nil); !bytes.Equal(got, golden) {
		t.Fatalf("AppendJoinPayload = %q, want %q", got, golden)
	}
	if got := AppendJoinPayload(nil, "tok", "", nil); string(got) != "tok" {
		t.Errorf("without a name the payload is %q, want the token alone", got)
	}
	for _, c := range []struct {
		payload     string
		token, name string
	}{
		{"", "", ""},
		{"s3cret", "s3cret", ""},                             // a v1 join: the token as it is
		{string(golden), "tok", "orders"},                    // both fields
		{"\x00sbj\x02\x00\x06orders", "", "orders"},          // a name, no token
		{"\x00sbj\x09\x00\x02xy\x01\x00\x01t", "t", ""},      // an unknown field is skipped
		{"\x00sbk\x01\x00\x01t", "\x00sbk\x01\x00\x01t", ""}, // not the magic: a token
		{"\x00sbj", "", ""},                                  // the magic alone
	} {
		token, name, _, err := ParseJoinPayload([]byte(c.payload), ch)
		if err != nil || token != c.token || name != c.name {
			t.Errorf("ParseJoinPayload(%q) = %q, %q, %v; want %q, %q, nil", c.payload, token, name, err, c.token, c.name)
		}
	}
	for n := len(joinFieldsMagic) + 1; n < len(golden); n++ {
		if n == len(joinFieldsMagic)+3+3 { // a whole token field: a valid payload
			continue
		}
		_, _, _, err := ParseJoinPayload(golden[:n], ch)
		var werr *Error
		if !errors.As(err, &werr) || werr.Code != CodeProtocol {
			t.Errorf("ParseJoinPayload of %d of %d bytes: %v, want a protocol error", n, len(golden), err)
		}
	}
	if _, _, _, err := ParseJoinPayload(AppendJoinPayload(nil, "", "payments", nil), ch); err == nil {
		t.Error("a name that is not the channel's was accepted")
	}
	if err := CheckChannelName("payments", ch); err == nil {
		t.Error("CheckChannelName accepted a name that is not the channel's")
	}
	// A client key: exactly ClientKeySize bytes, with or without a name.
	key := bytes.Repeat([]byte{7}, ClientKeySize)
	if tok, name, got, err := ParseJoinPayload(AppendJoinPayload(nil, "tok", "", key), ch); err != nil || tok != "tok" || name != "" || !bytes.Equal(got, key) {
		t.Errorf("token and key: got %q, %q, %x, %v; want tok, no name, the key", tok, name, got, err)
	}
	if _, _, _, err := ParseJoinPayload(AppendJoinPayload(nil, "", "", key[:5]), ch); err == nil {
		t.Error("a 5-byte client key was accepted")
	}
}

// FuzzJoinPayload checks that parsing never panics and that what
// AppendJoinPayload writes parses back.
func FuzzJoinPayload(f *testing.F) {
	f.Add([]byte("\x00sbj\x01\x00\x03tok\x02\x00\x06orders"), "tok", "orders")
	f.Add([]byte("s3cret"), "", "x")
	f.Fuzz(func(t *testing.T, p []byte, token, name string) {
		ParseJoinPayload(p, ChannelFromName(name))
		if len(token) > 0xffff || name == "" || CheckChannelName(name, ChannelFromName(name)) != nil {
			return
		}
		gotToken, gotName, _, err := ParseJoinPayload(AppendJoinPayload(nil, token, name, nil), ChannelFromName(name))
		if err != nil || gotToken != token || gotName != name {
			t.Errorf("round trip of %q, %q: %q, %q, %v", token, name, gotToken, gotName, err)
		}
	})
}
