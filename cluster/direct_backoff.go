package cluster

import (
	"math/rand/v2"
	"net"
	"time"
)

// Redialing and the hellos' slots. A node dials a peer again on the
// peer's next link message or announcement, not before the peer's
// dialAfter. Each failure — the dial, the TLS handshake, the hello
// refused or answered 'N' (the far node has not heard of this one yet,
// the usual first dial), or the account refusing the connection's charge
// — doubles the wait, from directRedial to directRedialMax, with up to a
// quarter more at random so that nodes do not redial in step; a link that
// comes on its connection (its marker through) starts again from
// directRedial.
//
// On the accepting side, at most directMaxHellos connections say hello at
// once, and at most directMaxHellosPerHost of them from one IP address: a
// hostile address that opens connections and never finishes a hello
// holds a few slots until their deadline, not all of them.

const (
	directRedialMax = 10 * time.Second
	// directMaxHellosPerHost bounds the hellos under way from one IP
	// address.
	directMaxHellosPerHost = 4
)

// dialFailedLocked makes n wait before it is dialed again, twice as long
// as after its last failure.
func (c *Cluster) dialFailedLocked(n *peerNode) {
	n.dialFailures = min(n.dialFailures+1, 16)
	wait := min(directRedial<<(n.dialFailures-1), directRedialMax)
	wait += rand.N(wait/4 + 1)
	n.dialAfter = time.Now().Add(wait)
}

// takeHelloSlot takes one of the hellos' slots for a connection from
// addr, or reports that all of them, or all of addr's host's, are taken.
// The slot is given back with releaseHelloSlot.
func (c *Cluster) takeHelloSlot(addr net.Addr) bool {
	host := hostOf(addr)
	c.directMu.Lock()
	defer c.directMu.Unlock()
	if c.directHellos >= directMaxHellos || c.directHellosFrom[host] >= directMaxHellosPerHost {
		return false
	}
	c.directHellos++
	c.directHellosFrom[host]++
	return true
}

// releaseHelloSlot gives back the slot a connection from addr took.
func (c *Cluster) releaseHelloSlot(addr net.Addr) {
	host := hostOf(addr)
	c.directMu.Lock()
	defer c.directMu.Unlock()
	c.directHellos--
	if c.directHellosFrom[host]--; c.directHellosFrom[host] <= 0 {
		delete(c.directHellosFrom, host)
	}
}

// hostOf is addr's IP address, or addr whole if it has no port.
func hostOf(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}
