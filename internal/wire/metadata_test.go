package wire

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"
)

// TestHeaderBlockGolden pins the header block's bytes: length, count, and
// each field with its key length and value length, keys sorted, several
// values of one key in order.
func TestHeaderBlockGolden(t *testing.T) {
	h := map[string][]string{"Trace-Id": {"4bf9"}, "Accept": {"a", "b"}}
	golden := []byte("\x00\x25" + // block length 37
		"\x00\x03" + // 3 fields
		"\x06Accept\x00\x01a" +
		"\x06Accept\x00\x01b" +
		"\x08Trace-Id\x00\x044bf9")
	got, err := AppendHeaderBlock(nil, h)
	if err != nil || !bytes.Equal(got, golden) {
		t.Fatalf("AppendHeaderBlock = %q, %v; want %q", got, err, golden)
	}
	if n := HeaderBlockSize(h); n != len(golden) {
		t.Errorf("HeaderBlockSize = %d, want %d", n, len(golden))
	}
	parsed, n, err := ParseHeaderBlock(append(golden, "body"...), MaxHeaderBlock)
	if err != nil || n != len(golden) || !maps.EqualFunc(parsed, h, slices.Equal) {
		t.Fatalf("ParseHeaderBlock = %v, %d, %v; want %v, %d", parsed, n, err, h, len(golden))
	}
	// No headers: the length alone.
	if got, _ := AppendHeaderBlock(nil, nil); !bytes.Equal(got, []byte{0, 0}) {
		t.Errorf("no headers encode as %q, want two zero bytes", got)
	}
	if h, n, err := ParseHeaderBlock([]byte{0, 0, 'x'}, MaxHeaderBlock); h != nil || n != 2 || err != nil {
		t.Errorf("an empty block parses as %v, %d, %v; want nil, 2, nil", h, n, err)
	}
}

// TestHeaderBlockTruncated: every prefix of a block shorter than the
// whole is refused as a protocol error.
func TestHeaderBlockTruncated(t *testing.T) {
	golden, _ := AppendHeaderBlock(nil, map[string][]string{"Trace-Id": {"4bf9"}, "Accept": {"a", "b"}})
	for n := 0; n < len(golden); n++ {
		_, _, err := ParseHeaderBlock(golden[:n], MaxHeaderBlock)
		var we *Error
		if !errors.As(err, &we) || we.Code != CodeProtocol {
			t.Errorf("a block cut to %d of %d bytes: %v, want a protocol error", n, len(golden), err)
		}
	}
}

// TestHeaderBlockRefusals: keys and values that cannot travel are refused
// when encoding and when parsing, and a block over the limit is too_large.
func TestHeaderBlockRefusals(t *testing.T) {
	for _, h := range []map[string][]string{
		{"": {"v"}},
		{"Bad Key": {"v"}},
		{string(bytes.Repeat([]byte("k"), 256)): {"v"}},
		{"Key": {"line\nbreak"}},
		{"Key": {"nul\x00"}},
		{"Key": {"\xff"}},
	} {
		if _, err := AppendHeaderBlock(nil, h); err == nil {
			t.Errorf("AppendHeaderBlock(%q) succeeded, want an error", h)
		}
	}
	// A key that is not a token, forged on the wire.
	forged := []byte("\x00\x0a\x00\x01\x03a b\x00\x02vv")
	if _, _, err := ParseHeaderBlock(forged, MaxHeaderBlock); err == nil {
		t.Error("a forged key with a space parsed")
	}
	// Trailing bytes inside the block.
	trailing := []byte("\x00\x09\x00\x01\x01k\x00\x01vX")
	if _, _, err := ParseHeaderBlock(trailing, MaxHeaderBlock); err == nil {
		t.Error("a block with bytes after its fields parsed")
	}
	big, _ := AppendHeaderBlock(nil, map[string][]string{"K": {string(bytes.Repeat([]byte("v"), 1000))}})
	_, _, err := ParseHeaderBlock(big, 100)
	var we *Error
	if !errors.As(err, &we) || we.Code != CodeTooLarge {
		t.Errorf("a block over the limit: %v, want too_large", err)
	}
	if _, err := AppendHeaderBlock(nil, map[string][]string{"K": {string(bytes.Repeat([]byte("v"), MaxHeaderBlock))}}); err == nil {
		t.Error("a block over MaxHeaderBlock encoded")
	}
}

// TestHeaderBlockCanonicalKeys: keys compare without regard to case: a
// parsed block holds them in canonical form.
func TestHeaderBlockCanonicalKeys(t *testing.T) {
	b, err := AppendHeaderBlock(nil, map[string][]string{"trace-id": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := ParseHeaderBlock(b, MaxHeaderBlock)
	if err != nil || h["Trace-Id"][0] != "x" {
		t.Fatalf("parsed %v, %v; want Trace-Id: x", h, err)
	}
}

// FuzzHeaderBlock: whatever the bytes, ParseHeaderBlock never panics and
// never reads past the block it reports; what it parses encodes back to a
// block that parses to the same headers.
func FuzzHeaderBlock(f *testing.F) {
	seed, _ := AppendHeaderBlock(nil, map[string][]string{"Trace-Id": {"4bf9"}, "Accept": {"a", "b"}})
	f.Add(seed)
	f.Add([]byte{0, 0})
	f.Add([]byte("\x00\x05\x00\x01\x01k\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, n, err := ParseHeaderBlock(p, MaxHeaderBlock)
		if err != nil {
			return
		}
		if n > len(p) {
			t.Fatalf("consumed %d of %d bytes", n, len(p))
		}
		again, err := AppendHeaderBlock(nil, h)
		if err != nil {
			t.Fatalf("re-encoding %v: %v", h, err)
		}
		back, _, err := ParseHeaderBlock(again, MaxHeaderBlock)
		if err != nil || !maps.EqualFunc(back, h, slices.Equal) {
			t.Fatalf("round trip of %v gave %v, %v", h, back, err)
		}
	})
}
