package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/socketbus/socketbus"
)

// headerFlags is send's repeatable -H 'Key: value'.
type headerFlags struct{ h socketbus.Header }

func (f *headerFlags) String() string { return "" }
func (f *headerFlags) Type() string   { return "'Key: value'" }

// Set adds one header, given as "Key: value" (curl's form).
func (f *headerFlags) Set(s string) error {
	key, value, ok := strings.Cut(s, ":")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return fmt.Errorf("want 'Key: value', got %q", s)
	}
	if f.h == nil {
		f.h = socketbus.Header{}
	}
	f.h.Add(key, strings.TrimSpace(value))
	return nil
}

// printHeaders writes h to w as "Key: value" lines, keys sorted, values
// in order, then an empty line when there was any header.
func printHeaders(w io.Writer, h socketbus.Header) {
	if len(h) == 0 {
		return
	}
	var b strings.Builder
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// headerEnvPrefix begins the name of each environment variable receive
// --exec gives a request's headers in.
const headerEnvPrefix = "SOCKETBUS_HEADER_"

// headerEnv returns the environment variables receive --exec passes a
// request's headers in: SOCKETBUS_HEADER_ and the key upper-cased, every
// character but letters and digits made "_" (Trace-Id becomes
// SOCKETBUS_HEADER_TRACE_ID); several values are joined by ", ". Keys
// that map to the same name (A-B and A_B) are given in sorted order, so
// the last one's value is the one the command sees.
func headerEnv(h socketbus.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, headerEnvName(k)+"="+strings.Join(h[k], ", "))
	}
	return env
}

// headerEnvName is the environment variable of header key k.
func headerEnvName(k string) string {
	return headerEnvPrefix + strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// codePrefix starts the stderr line with which a failing --exec command
// gives the request's error code: "code: not_found".
const codePrefix = "code:"

// splitCode reads the error code a failing command gave on the first line
// of its stderr ("code: not_found"), if it did: the code and the rest of
// the message. A line that does not hold a valid code is part of the
// message.
func splitCode(msg string) (code, rest string) {
	first, after, _ := strings.Cut(msg, "\n")
	c, ok := strings.CutPrefix(strings.TrimSpace(first), codePrefix)
	c = strings.TrimSpace(c)
	if !ok || !validCode(c) {
		return "", msg
	}
	return c, strings.TrimSpace(after)
}

// validCode reports whether c is an error code a RemoteError carries: 1
// to 64 RFC 9110 token characters.
func validCode(c string) bool {
	if len(c) == 0 || len(c) > 64 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			continue
		}
		return false
	}
	return true
}
