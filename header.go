package socketbus

import "net/textproto"

// Header holds a request's or a response's headers (protocol v3): string
// keys, each with one or more string values, as net/http's Header does.
// Keys are compared without regard to case: Get, Set, Add, Values and Del
// canonicalize them as net/textproto does ("trace-id" is "Trace-Id"), and
// the headers a handler or a caller receives have canonical keys.
//
// A key is 1 to 255 RFC 9110 token characters (letters, digits and
// !#$%&'*+-.^_`|~); a value is UTF-8 without NUL, CR or LF. A request
// whose headers break these rules, or whose encoding is over the server's
// bound (16 KiB unless it says otherwise), fails with ErrTooLarge or an
// error naming the header. Header values may hold credentials: socketbus
// logs and status output show keys at most, never values.
type Header map[string][]string

// Get returns the first value of key, or "" when it has none.
func (h Header) Get(key string) string {
	if vs := h[textproto.CanonicalMIMEHeaderKey(key)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Set makes value the only value of key.
func (h Header) Set(key, value string) {
	h[textproto.CanonicalMIMEHeaderKey(key)] = []string{value}
}

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	key = textproto.CanonicalMIMEHeaderKey(key)
	h[key] = append(h[key], value)
}

// Values returns every value of key, in order; the slice is h's own.
func (h Header) Values(key string) []string {
	return h[textproto.CanonicalMIMEHeaderKey(key)]
}

// Del removes key and its values.
func (h Header) Del(key string) {
	delete(h, textproto.CanonicalMIMEHeaderKey(key))
}

// Clone returns a copy of h that shares nothing with it, or nil when h is
// nil.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	c := make(Header, len(h))
	for k, vs := range h {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
