package server

import (
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
	case wire.KnownVersion(b) && c.s.cfg.TLSConfig != nil:
		return wire.Errorf(wire.CodeProtocol, "%s", wire.TLSRequiredMessage)
	case wire.KnownVersion(b) || !strings.ContainsRune("CDGHOP", rune(b)):
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
