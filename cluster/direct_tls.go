package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// With Config.RouteTLS set, direct connections speak TLS with it as the
// routes do, both ways: the accepting node serves its certificate (and
// checks the dialing node's when ClientAuth asks), the dialing node
// verifies the accepting node's against RootCAs for the host of the
// address that node announced (unless RouteTLS names a ServerName) and
// presents its own certificate. The handshake comes first, within the
// hello's deadline and, on the accepting side, in one of the hello's
// slots; the hello (direct_hello.go) and everything after it runs inside
// TLS. A connection whose handshake fails is closed, and the link stays
// on NATS. The TLS layer holds its own record buffers (a few tens of KiB
// per connection), beside what direct_budget.go charges.

// clientTLS wraps raw, a connection this node dialed to addr, in TLS when
// RouteTLS is set; it does no I/O (the handshake is the hello's).
func (c *Cluster) clientTLS(raw net.Conn, addr string) net.Conn {
	if c.cfg.RouteTLS == nil {
		return raw
	}
	cfg := c.cfg.RouteTLS.Clone()
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	return tls.Client(raw, cfg)
}

// serverTLS wraps raw, a connection this node accepted, in TLS when
// RouteTLS is set; it does no I/O.
func (c *Cluster) serverTLS(raw net.Conn) net.Conn {
	if c.cfg.RouteTLS == nil {
		return raw
	}
	return tls.Server(raw, c.cfg.RouteTLS.Clone())
}

// handshake runs d's TLS handshake, if it speaks TLS, within the deadline
// set on the connection.
func (d *directConn) handshake() error {
	tc, ok := d.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
