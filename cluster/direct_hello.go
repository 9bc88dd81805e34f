package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/socketbus/socketbus/internal/budget"
)

// The hello of a direct connection, a challenge and its response, keyed
// with the route credentials (RouteUser, RoutePassword), which every node
// of the bus is given (New refuses DirectListen without RoutePassword);
// with RouteTLS it runs inside TLS (direct_tls.go):
//
//  1. the accepting node sends directMagic and a random nonce of
//     directNonceSize bytes (the challenge);
//  2. the dialing node answers with its hello: a 2-byte big-endian length
//     (at most maxHello), then "<bus> <from> <from's incarnation> <to>
//     <to's incarnation> <connection ID, hex> <its own nonce, hex> <MAC,
//     hex>", the MAC an HMAC-SHA256 over the fields before it and the
//     challenge's nonce (helloMAC, labelled "dial");
//  3. the accepting node checks it in constant time (hmac.Equal) and, if
//     the hello names a node it knows, in the incarnation it knows, and
//     this node in its own, answers 'Y' and an HMAC over the same fields
//     labelled "accept" — first in the connection's write queue — which
//     the dialing node checks the same way. A hello that checks out from a
//     node it has not heard of yet (its announcement is on its way) is
//     answered 'N', and the dialing node tries again without a warning;
//     anything else is answered by closing the connection.
//
// Each side's MAC covers a nonce the other side just made, so neither can
// be replayed on another connection, and the labels keep one side's MAC
// from passing for the other's. Every read of the hello is of a bounded
// size into a fixed buffer, and the whole hello has directHelloTimeout;
// the accepting side holds nothing else until the hello checks out (its
// buffers are charged and made only then: direct_budget.go).

const (
	directMagic        = "socketbus-direct/2"
	directNonceSize    = 32
	directHelloTimeout = 5 * time.Second
	// maxHello bounds the dialing node's hello (after its length).
	maxHello = 1024
	// directMaxHellos bounds the accepted connections saying hello at once.
	directMaxHellos = 16
)

// errHello is what a hello that does not check out is refused with.
var errHello = errors.New("direct hello refused")

// errNotKnown: the far node checked the hello but has not heard of this
// node (in this incarnation) yet; it answers 'N' instead of 'Y'.
var errNotKnown = errors.New("the far node has not heard of this node yet")

// helloMAC is the MAC of a hello's fields, for the side label says.
func (c *Cluster) helloMAC(label string, challenge []byte, fields []string) []byte {
	m := hmac.New(sha256.New, []byte("socketbus direct "+c.cfg.RouteUser+"\x00"+c.cfg.RoutePassword))
	var n [2]byte
	for _, f := range append([]string{label, string(challenge)}, fields...) {
		binary.BigEndian.PutUint16(n[:], uint16(len(f)))
		m.Write(n[:])
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}

// helloFields are the fields a hello from node from to node to says.
func helloFields(bus, from, fromInc, to, toInc string, id uint64, nonce []byte) []string {
	return []string{bus, from, fromInc, to, toInc, strconv.FormatUint(id, 16), hex.EncodeToString(nonce)}
}

// appendHello appends the dialing side's hello (its length first) for a
// connection with ID id to node to, in its incarnation toInc, answering
// challenge; nonce is this side's.
func (c *Cluster) appendHello(b, challenge []byte, to, toInc string, id uint64, nonce []byte) []byte {
	fields := helloFields(c.cfg.Name, c.cfg.Node, c.incarnation, to, toInc, id, nonce)
	line := strings.Join(fields, " ") + " " + hex.EncodeToString(c.helloMAC("dial", challenge, fields))
	b = binary.BigEndian.AppendUint16(b, uint16(len(line)))
	return append(b, line...)
}

// dialHello dials addr, answers the far node's challenge and checks its
// answer. acct holds the connection's charge.
func (c *Cluster) dialHello(n *peerNode, addr, inc string, acct *budget.Account) (*directConn, error) {
	d, err := c.dialConn(n, addr, acct)
	if err != nil {
		return nil, err
	}
	_ = d.conn.SetDeadline(time.Now().Add(directHelloTimeout))
	if err := d.handshake(); err != nil {
		d.close()
		return nil, err
	}
	var challenge [len(directMagic) + directNonceSize]byte
	if _, err := io.ReadFull(d.br, challenge[:]); err != nil {
		d.close()
		return nil, fmt.Errorf("challenge: %w", err)
	}
	if string(challenge[:len(directMagic)]) != directMagic {
		d.close()
		return nil, fmt.Errorf("%w: not a socketbus node's challenge", errHello)
	}
	nonce := challenge[len(directMagic):]
	var mine [directNonceSize]byte
	_, _ = rand.Read(mine[:])
	if _, err := d.conn.Write(c.appendHello(make([]byte, 0, maxHello+2), nonce, n.name, inc, d.id, mine[:])); err != nil {
		d.close()
		return nil, fmt.Errorf("hello: %w", err)
	}
	var answer [1 + sha256.Size]byte
	if _, err := io.ReadFull(d.br, answer[:1]); err == nil && answer[0] == 'N' {
		d.close()
		return nil, errNotKnown
	}
	if _, err := io.ReadFull(d.br, answer[1:]); err != nil {
		d.close()
		return nil, fmt.Errorf("%w (%w)", errHello, err)
	}
	want := c.helloMAC("accept", nonce, helloFields(c.cfg.Name, c.cfg.Node, c.incarnation, n.name, inc, d.id, mine[:]))
	if answer[0] != 'Y' || !hmac.Equal(answer[1:], want) {
		d.close()
		return nil, fmt.Errorf("%w: the far node's answer does not check out", errHello)
	}
	_ = d.conn.SetDeadline(time.Time{})
	return d, nil
}

// acceptHello challenges the dialing node and checks its hello; if the
// hello names a node this one knows, and the account holds the
// connection, it makes the connection that node's and reads it.
func (c *Cluster) acceptHello(d *directConn) {
	defer c.directWG.Done()
	n, id, answer, ok := c.checkHello(d)
	c.releaseHelloSlot(d.raw.RemoteAddr())
	if !ok {
		d.close()
		return
	}
	c.mu.Lock()
	from := n.name
	if c.closing || c.sub == nil || c.nodes[from] != n || n.dropped {
		c.mu.Unlock()
		d.close()
		return
	}
	acct, ok := c.chargeDirectLocked(from)
	if !ok {
		c.mu.Unlock()
		d.close()
		return
	}
	d.setBuffers(acct)
	// The answer is the first thing in the write queue, before anything
	// the outbox queues once the connection is n's; the writer sends it
	// (no socket write under Cluster.mu).
	d.wmu.Lock()
	d.n, d.id = n, id // close may read n at any time (stopDirect)
	d.wmu.Unlock()
	_ = d.conn.SetDeadline(time.Time{})
	d.enqueue(answer, nil)
	d.kick()
	c.installLocked(n, d)
	c.mu.Unlock()
	c.directWG.Add(2)
	go d.writeLoop()
	d.read()
}

// checkHello sends d's challenge and reads and checks the hello, within
// directHelloTimeout, into fixed buffers. It returns the node the hello is
// from, the connection's ID and the answer to queue.
func (c *Cluster) checkHello(d *directConn) (n *peerNode, id uint64, answer []byte, ok bool) {
	refuse := func(why string) (*peerNode, uint64, []byte, bool) {
		c.warnLimitedf("direct", "cluster: direct connection from %s refused: %s", d.conn.RemoteAddr(), why)
		return nil, 0, nil, false
	}
	_ = d.conn.SetDeadline(time.Now().Add(directHelloTimeout))
	if err := d.handshake(); err != nil {
		return refuse(err.Error())
	}
	var challenge [len(directMagic) + directNonceSize]byte
	copy(challenge[:], directMagic)
	nonce := challenge[len(directMagic):]
	_, _ = rand.Read(nonce)
	if _, err := d.conn.Write(challenge[:]); err != nil {
		return nil, 0, nil, false
	}
	var buf [2 + maxHello]byte
	if _, err := io.ReadFull(d.conn, buf[:2]); err != nil {
		return nil, 0, nil, false
	}
	size := int(binary.BigEndian.Uint16(buf[:2]))
	if size == 0 || size > maxHello {
		return refuse(fmt.Sprintf("a hello of %d bytes", size))
	}
	if _, err := io.ReadFull(d.conn, buf[2:2+size]); err != nil {
		return nil, 0, nil, false
	}
	f := strings.Split(string(buf[2:2+size]), " ")
	if len(f) != 8 {
		return refuse("a malformed hello")
	}
	mac, err := hex.DecodeString(f[7])
	if err != nil || !hmac.Equal(mac, c.helloMAC("dial", nonce, f[:7])) {
		return refuse("bad credentials")
	}
	bus, from, fromInc, to, toInc := f[0], f[1], f[2], f[3], f[4]
	id, err = strconv.ParseUint(f[5], 16, 64)
	if err != nil || len(f[6]) != 2*directNonceSize || bus != c.cfg.Name || to != c.cfg.Node || toInc != c.incarnation || !(from < c.cfg.Node) {
		return refuse("a hello for another node, or from one that does not dial this one")
	}
	c.mu.Lock()
	n = c.nodes[from]
	known := n != nil && !n.dropped && n.incarnation == fromInc
	c.mu.Unlock()
	if !known {
		// Not heard of yet (the usual first dial, before this node has
		// the dialer's announcement), or restarted: the dialer, whose
		// hello checked out, is told so, and dials again quietly.
		_, _ = d.conn.Write([]byte{'N'})
		return nil, 0, nil, false
	}
	answer = append([]byte{'Y'}, c.helloMAC("accept", nonce, f[:7])...)
	return n, id, answer, true
}
