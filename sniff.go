package socketbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// A client may speak the wrong protocol to a port: a plain join to a TLS
// server, HTTP to a bus port, a join to an HTTP port. The server looks at a
// connection's first bytes before its TLS handshake and join, and answers
// such a client in the client's own protocol; Dial looks at the answer to
// a join that failed. Either way the error says what is probably wrong, at
// once rather than at a timeout.

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

// tlsRequiredMessage is the message of the error frame a TLS server answers
// a plain join with; Dial recognises it.
const tlsRequiredMessage = "this server requires TLS; connect with TLS (--tls)"

// httpAnswerBody is the body of the response a bus port gives an HTTP
// request.
const httpAnswerBody = "socketbus: this is a socketbus bus port, not HTTP; the HTTP monitor, if the server has one, is at the address of serve --monitor\n"

// httpMethods start the request line of every HTTP/1 request.
var httpMethods = []string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT "}

// errHTTPClient is sniff's error for an HTTP client, already answered: the
// connection is only to be closed.
var errHTTPClient = errors.New("socketbus: an HTTP request on the bus port; answered 400")

// sniff looks at the first byte of a new connection, before the TLS
// handshake and the join, for a client that speaks another protocol. A
// plain join on a TLS server gets a *wire.Error to send as a plain error
// frame; an HTTP request gets a 400 response here and errHTTPClient. For
// anything else sniff consumes nothing and returns nil, and the handshake
// goes on as before. The connection's deadline bounds the wait.
func (c *serverConn) sniff() error {
	b, ok := peekByte(c.nc)
	switch {
	case !ok:
		return nil
	case b == wire.Version && c.s.cfg.TLSConfig != nil:
		return wire.Errorf(wire.CodeProtocol, "%s", tlsRequiredMessage)
	case b == wire.Version || !strings.ContainsRune("CDGHOP", rune(b)):
		return nil
	}
	// Not a socketbus frame, which starts with the version: read what
	// tells HTTP from anything else.
	if !readHTTPMethod(c.nc) {
		return wire.Errorf(wire.CodeBadVersion, "unsupported protocol version %d (this server speaks %d)", b, wire.Version)
	}
	answer := fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		len(httpAnswerBody), httpAnswerBody)
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.nc.Write([]byte(answer)); err != nil {
		return fmt.Errorf("socketbus: answering an HTTP request: %w", err)
	}
	closeWriteAndDrain(c.nc)
	return errHTTPClient
}

// readHTTPMethod reads from nc, a byte at a time, until what it read is
// one of httpMethods or the start of none of them, and reports which.
func readHTTPMethod(nc net.Conn) bool {
	var buf []byte
	one := make([]byte, 1)
	for len(buf) < len("OPTIONS ") {
		if _, err := io.ReadFull(nc, one); err != nil {
			return false
		}
		buf = append(buf, one[0])
		prefix := false
		for _, m := range httpMethods {
			if m == string(buf) {
				return true
			}
			prefix = prefix || strings.HasPrefix(m, string(buf))
		}
		if !prefix {
			return false
		}
	}
	return false
}

// closeWriteAndDrain ends a TCP connection's sending side and reads what
// the peer still sends for up to a second, so that an answer just written
// is read rather than lost to a reset.
func closeWriteAndDrain(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	tc.CloseWrite()
	tc.SetReadDeadline(time.Now().Add(time.Second))
	var buf [4096]byte
	for total := 0; total < 1<<20; {
		n, err := tc.Read(buf[:])
		total += n
		if err != nil {
			return
		}
	}
}

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
		return &wrongServerError{kind: ErrTLSRequired, detail: tlsRequiredMessage, err: err}
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
	e, err := wire.ParseError(answer[n : n+int(h.Length)])
	return err == nil && e.Code == wire.CodeProtocol && e.Message == tlsRequiredMessage
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
