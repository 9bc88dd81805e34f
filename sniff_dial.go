package socketbus

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// Dial's side of the wrong-protocol answers (sniff.go): what the server's
// answer to a failed join shows is wrong.

// Errors Dial returns when the server speaks another protocol. They come
// with ErrProtocol: errors.Is matches both.
var (
	// ErrTLSRequired is returned by Dial without WithTLS when the server
	// refused the join because it speaks only TLS.
	ErrTLSRequired = errors.New("socketbus: the server requires TLS")
	// ErrHTTPAnswer is returned by Dial when the server answered the join
	// with HTTP: the address is an HTTP server's, such as a socketbus
	// server's monitoring endpoint, not a bus port.
	ErrHTTPAnswer = errors.New("socketbus: the server answered HTTP")
)

// maxRecorded bounds what an answerRecorder keeps.
const maxRecorded = 1024

// answerRecorder is a connection as Dial's handshake uses it: it keeps
// the first bytes the server answers, so that a failed join can say what
// the server spoke.
type answerRecorder struct {
	net.Conn
	got []byte // the first maxRecorded bytes read
}

// Read reads from the connection, keeping a copy of the first bytes.
func (r *answerRecorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if room := maxRecorded - len(r.got); room > 0 {
		r.got = append(r.got, p[:min(n, room)]...)
	}
	return n, err
}

// explain returns err, the failed handshake's error, saying what the
// server's answer shows is wrong: an HTTP answer, or a refusal because the
// server requires TLS. Otherwise it returns err as it is.
func (r *answerRecorder) explain(ctx context.Context, err error) error {
	switch {
	case bytes.HasPrefix(r.got, []byte("HTTP/")):
		return &wrongServerError{kind: ErrHTTPAnswer, detail: r.httpSummary(ctx), err: err}
	case errors.Is(err, ErrProtocol) && refusedForTLS(r.got):
		return &wrongServerError{kind: ErrTLSRequired, detail: wire.TLSRequiredMessage, err: err}
	}
	return err
}

// httpSummary reads the rest of an HTTP answer, for a moment, and returns
// its status line and the first line of its body.
func (r *answerRecorder) httpSummary(ctx context.Context) string {
	deadline := time.Now().Add(time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	r.SetReadDeadline(deadline)
	var buf [512]byte
	for len(r.got) < maxRecorded {
		if _, err := r.Read(buf[:]); err != nil {
			break
		}
	}
	head, body, _ := bytes.Cut(r.got, []byte("\r\n\r\n"))
	status, _, _ := bytes.Cut(head, []byte("\r\n"))
	summary := printable(status)
	if line, _, _ := bytes.Cut(bytes.TrimSpace(body), []byte("\n")); len(line) > 0 {
		summary += ": " + printable(line)
	}
	return summary
}

// printable returns b as a string of at most 200 runes, without control
// characters, for an error message.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(string(b), "?"))
	if rs := []rune(s); len(rs) > 200 {
		s = string(rs[:200]) + "…"
	}
	return strings.TrimSpace(s)
}

// refusedForTLS reports whether answer is the error frame a TLS server
// refuses a plain join with.
func refusedForTLS(answer []byte) bool {
	h, n, err := wire.ParseHeader(answer)
	if err != nil || h.Type != wire.TypeError || len(answer) < n+int(h.Length) {
		return false
	}
	e, err := wire.ParseErrorVersion(h.Version, answer[n:n+int(h.Length)], wire.MaxHeaderBlock)
	return err == nil && e.Code == wire.CodeProtocol && e.Message == wire.TLSRequiredMessage
}

// wrongServerError is Dial's error when the server speaks another
// protocol: kind says which, detail what the server said. It matches kind
// and the handshake's own error.
type wrongServerError struct {
	kind   error
	detail string
	err    error
}

// Error says what the server spoke; the handshake's own error, a parse
// error of the answer, is left out as noise.
func (e *wrongServerError) Error() string {
	msg := "socketbus: join: " + strings.TrimPrefix(e.kind.Error(), "socketbus: ")
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg
}

// Unwrap returns the kind and the handshake's error, for errors.Is.
func (e *wrongServerError) Unwrap() []error { return []error{e.kind, e.err} }
