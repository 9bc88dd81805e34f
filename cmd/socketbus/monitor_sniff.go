package main

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// First bytes of a client that took the monitor for the bus port, which no
// HTTP request begins with.
const (
	joinFirstByte    = 1 // every socketbus frame, a join too, begins with the protocol version: 1 to 3 (docs/PROTOCOL.md)
	joinLastByte     = 3
	tlsHandshakeByte = 0x16 // a TLS handshake record, which a client with --tls begins with
)

// monitorListener hands the monitor's HTTP server connections that answer
// a socketbus client at once, with a 400 naming the bus port, instead of
// leaving it to wait for a request line that never comes.
type monitorListener struct {
	net.Listener
	bus string // the bus address, for the answer
}

// Accept returns the next connection, watched for a socketbus join.
func (l *monitorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &monitorConn{Conn: c, bus: l.bus}, nil
}

// monitorConn is a monitor connection whose first read looks for a
// socketbus join.
type monitorConn struct {
	net.Conn
	bus   string
	begun atomic.Bool // the first read has happened
}

// Read reads from the connection. If the first bytes are a socketbus join,
// plain or in TLS, it answers them and returns io.EOF, which makes the
// HTTP server close the connection.
func (c *monitorConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.begun.Swap(true) && (joinFirstByte <= p[0] && p[0] <= joinLastByte || p[0] == tlsHandshakeByte) {
		c.answerJoin()
		return 0, io.EOF
	}
	return n, err
}

// answerJoin writes the 400 a socketbus client gets, then ends the
// connection gently, so that the answer is read rather than lost to a
// reset.
func (c *monitorConn) answerJoin() {
	body := fmt.Sprintf("socketbus: this is the HTTP monitoring endpoint of a socketbus server, not its bus port; the bus is at %s\n", c.bus)
	answer := fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c.Conn, answer); err != nil {
		return
	}
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
}
