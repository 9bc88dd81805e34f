package wire

import (
	"encoding/binary"
	"net/textproto"
	"slices"
	"unicode/utf8"
)

// A header block (protocol version 3, docs/PROTOCOL.md) carries a
// request's or a response's headers at the front of its start frame's
// payload: a 2-byte big-endian block length, then that many bytes of
// fields. Length 0 means no headers. The fields are a 2-byte field count,
// then per field a 1-byte key length, the key, a 2-byte value length and
// the value. A key with several values appears once per value, in order.
//
// Keys are 1 to 255 bytes of RFC 9110 token characters, compared without
// regard to case: ParseHeaderBlock canonicalizes them as net/textproto does
// ("trace-id" becomes "Trace-Id"). Values are UTF-8 without NUL, CR or LF,
// so that they can be printed and passed on as environment variables.

// HeaderBlockLenSize is the size of a header block's length prefix.
const HeaderBlockLenSize = 2

// MaxHeaderBlock is the largest header block a frame can carry: with the
// length prefix and a delivery's receive ID it leaves room in one frame.
const MaxHeaderBlock = 32 << 10

// AppendHeaderBlock appends h as a header block, its length prefix first,
// keys in sorted order so that the same headers always encode the same.
// A nil or empty h appends the 2-byte length 0.
func AppendHeaderBlock(b []byte, h map[string][]string) ([]byte, error) {
	start := len(b)
	fields := countFields(h)
	if fields == 0 {
		return append(b, 0, 0), nil
	}
	b = slices.Grow(b, HeaderBlockSize(h))
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(fields))
	var onStack [8]string // the keys of a few headers sort without an allocation
	keys := onStack[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return b[:start], err
		}
		for _, v := range h[k] {
			if err := checkValue(k, v); err != nil {
				return b[:start], err
			}
			b = append(b, byte(len(k)))
			b = append(b, k...)
			b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		}
	}
	n := len(b) - start - HeaderBlockLenSize
	if n > MaxHeaderBlock {
		return b[:start], Errorf(CodeTooLarge, "a header block of %d bytes is over %d", n, MaxHeaderBlock)
	}
	binary.BigEndian.PutUint16(b[start:], uint16(n))
	return b, nil
}

// HeaderBlockSize returns the bytes AppendHeaderBlock writes for h, its
// length prefix included, without checking h.
func HeaderBlockSize(h map[string][]string) int {
	if countFields(h) == 0 {
		return HeaderBlockLenSize
	}
	n := HeaderBlockLenSize + 2
	for k, vs := range h {
		for _, v := range vs {
			n += 1 + len(k) + 2 + len(v)
		}
	}
	return n
}

// countFields counts h's key-value pairs.
func countFields(h map[string][]string) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}

// NoHeaders is the header block of a start frame without headers: its
// 2-byte length, 0.
var NoHeaders = []byte{0, 0}

// HeaderBlockLen returns how many bytes the header block at the front of p
// takes, its length prefix included, checking only that the length prefix
// is there and that p holds the block. It looks at none of the fields:
// CheckHeaderBlock does.
func HeaderBlockLen(p []byte) (int, error) {
	if len(p) < HeaderBlockLenSize {
		return 0, Errorf(CodeProtocol, "header block: %d bytes, shorter than its 2-byte length", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p)-HeaderBlockLenSize < n {
		return 0, Errorf(CodeProtocol, "header block of %d bytes, %d left in the frame", n, len(p)-HeaderBlockLenSize)
	}
	return HeaderBlockLenSize + n, nil
}

// CheckHeaderBlock checks the header block at the front of p as
// ParseHeaderBlock does, without building the headers (it allocates
// nothing), and returns how many bytes it takes.
func CheckHeaderBlock(p []byte, max int) (int, error) {
	return walkHeaderBlock(p, max, nil)
}

// ParseHeaderBlock reads the header block at the front of p: it returns
// the headers (nil when there are none) and how many bytes of p the block
// took, its length prefix included. A block longer than max, or one that
// is truncated or malformed, is a protocol error (too_large for the
// first).
//
// Every key and value is a substring of one string made of the block, and
// the values of keys that appear once share one array: a block costs a few
// allocations, not one per key and value.
func ParseHeaderBlock(p []byte, max int) (map[string][]string, int, error) {
	n, err := walkHeaderBlock(p, max, nil)
	if err != nil {
		return nil, 0, err
	}
	if n == HeaderBlockLenSize {
		return nil, n, nil
	}
	count := int(binary.BigEndian.Uint16(p[HeaderBlockLenSize:]))
	block := string(p[HeaderBlockLenSize+2 : n]) // checked by the walk
	h := make(map[string][]string, min(count, 16))
	values := make([]string, count)
	for i := range count {
		kl := int(block[0])
		key := textproto.CanonicalMIMEHeaderKey(block[1 : 1+kl]) // no copy when already canonical
		vl := int(block[1+kl])<<8 | int(block[2+kl])
		values[i] = block[3+kl : 3+kl+vl]
		block = block[3+kl+vl:]
		if vs, ok := h[key]; ok {
			h[key] = append(vs, values[i])
		} else {
			h[key] = values[i : i+1 : i+1]
		}
	}
	return h, n, nil
}

// walkHeaderBlock checks the header block at the front of p and, when
// field is not nil, gives it each field in order (with the block's field
// count).
func walkHeaderBlock(p []byte, max int, field func(count int, key, value string)) (int, error) {
	if len(p) < HeaderBlockLenSize {
		return 0, Errorf(CodeProtocol, "header block: %d bytes, shorter than its 2-byte length", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n == 0 {
		return HeaderBlockLenSize, nil
	}
	if n > max {
		return 0, Errorf(CodeTooLarge, "header block of %d bytes is over the limit of %d", n, max)
	}
	rest := p[HeaderBlockLenSize:]
	if len(rest) < n {
		return 0, Errorf(CodeProtocol, "header block of %d bytes, %d left in the frame", n, len(rest))
	}
	block := rest[:n]
	if len(block) < 2 {
		return 0, Errorf(CodeProtocol, "header block of %d bytes has no field count", n)
	}
	count := int(binary.BigEndian.Uint16(block))
	if count == 0 {
		return 0, Errorf(CodeProtocol, "header block of %d bytes with no field", n)
	}
	block = block[2:]
	for i := range count {
		if len(block) < 1 {
			return 0, Errorf(CodeProtocol, "header block: field %d of %d missing", i+1, count)
		}
		kl := int(block[0])
		if len(block) < 1+kl+2 {
			return 0, Errorf(CodeProtocol, "header block: field %d truncated", i+1)
		}
		key := block[1 : 1+kl]
		if err := checkKeyBytes(key); err != nil {
			return 0, err
		}
		vl := int(binary.BigEndian.Uint16(block[1+kl:]))
		block = block[1+kl+2:]
		if len(block) < vl {
			return 0, Errorf(CodeProtocol, "header block: the value of %q truncated", key)
		}
		value := block[:vl]
		if err := checkValueBytes(key, value); err != nil {
			return 0, err
		}
		block = block[vl:]
		if field != nil {
			field(count, string(key), string(value))
		}
	}
	if len(block) != 0 {
		return 0, Errorf(CodeProtocol, "header block: %d bytes after its %d fields", len(block), count)
	}
	return HeaderBlockLenSize + n, nil
}

// checkKey checks that k is a header key: 1 to 255 token characters.
func checkKey(k string) error {
	if len(k) == 0 || len(k) > 255 {
		return Errorf(CodeProtocol, "header key of %d bytes: want 1 to 255", len(k))
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return Errorf(CodeProtocol, "header key %q: byte %#x is not a token character", k, k[i])
		}
	}
	return nil
}

// checkKeyBytes is checkKey for a key still in its frame.
func checkKeyBytes(k []byte) error {
	if len(k) == 0 {
		return Errorf(CodeProtocol, "header key of 0 bytes: want 1 to 255")
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return Errorf(CodeProtocol, "header key %q: byte %#x is not a token character", k, k[i])
		}
	}
	return nil
}

// checkValue checks that v, a value of key k, is UTF-8 of at most 65535
// bytes without NUL, CR or LF.
func checkValue(k, v string) error {
	if len(v) > 0xffff {
		return Errorf(CodeTooLarge, "header %q: a value of %d bytes", k, len(v))
	}
	if !utf8.ValidString(v) {
		return Errorf(CodeProtocol, "header %q: the value is not UTF-8", k)
	}
	return checkValueChars(k, v)
}

// checkValueBytes is checkValue for a value still in its frame (which
// cannot be over 65535 bytes).
func checkValueBytes(k, v []byte) error {
	if !utf8.Valid(v) {
		return Errorf(CodeProtocol, "header %q: the value is not UTF-8", k)
	}
	return checkValueChars(k, v)
}

// checkValueChars refuses NUL, CR and LF in value v of key k.
func checkValueChars[S string | []byte](k, v S) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == 0 || c == '\r' || c == '\n' {
			return Errorf(CodeProtocol, "header %q: the value holds byte %#x", k, c)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
