package cluster_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// rawDirect connects to node n's direct listener as a stranger would.
func rawDirect(t *testing.T, n *testNode) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", n.c.DirectAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// readChallenge reads the challenge the accepting node sends first, and
// returns its nonce.
func readChallenge(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ch [cluster.DirectChallengeSize]byte
	if _, err := io.ReadFull(conn, ch[:]); err != nil {
		t.Fatalf("no challenge: %v", err)
	}
	return ch[cluster.DirectChallengeSize-32:]
}

// closedByPeer reports whether the far side closed conn: a read ends
// with an error other than the (generous) deadline.
func closedByPeer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [64]byte
	for {
		_, err := conn.Read(b[:])
		if err == nil {
			continue // what the node wrote before it closed
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// TestDirectHostileHello: a stranger on n2's direct port is refused — a
// hello with a bad MAC, one replayed from another connection (a valid MAC
// for another challenge), lengths out of bounds, a malformed one of the
// largest size — and connections past the bound of hellos under way from
// one address are closed before any challenge. None of them is charged anything, and n1's
// direct connection to n2 carries on untouched.
func TestDirectHostileHello(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", cfg: server.Config{MaxMemory: 256 << 20}}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	used, _ := n2.c.Charged()
	inc2 := n2.c.Incarnation()

	refused := func(what string, conn net.Conn, send []byte) {
		t.Helper()
		if _, err := conn.Write(send); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !closedByPeer(conn) {
			t.Fatalf("%s: the connection stayed open", what)
		}
	}
	conn := rawDirect(t, n2)
	hello := n1.c.DirectHello(readChallenge(t, conn), "n2", inc2, 1)
	hello[len(hello)-1] ^= 1 // a hex digit of the MAC: '0'..'f' stays printable
	refused("a bad MAC", conn, hello)

	first := rawDirect(t, n2)
	replayed := n1.c.DirectHello(readChallenge(t, first), "n2", inc2, 2)
	second := rawDirect(t, n2)
	readChallenge(t, second)
	refused("a hello replayed on another connection", second, replayed)

	for _, size := range []uint16{0xffff, 1025, 0} {
		conn := rawDirect(t, n2)
		readChallenge(t, conn)
		refused("a hello's length out of bounds", conn, binary.BigEndian.AppendUint16(nil, size))
	}
	conn = rawDirect(t, n2)
	readChallenge(t, conn)
	big := binary.BigEndian.AppendUint16(nil, 1024)
	for range 1024 {
		big = append(big, 'a')
	}
	refused("a malformed hello of the largest size", conn, big)

	conn = rawDirect(t, n2)
	refused("a hello for an old incarnation", conn, n1.c.DirectHello(readChallenge(t, conn), "n2", "0123456789abcdef", 3))

	// The connection that waited for its replayed hello is still saying
	// hello: it holds one of this address's slots. Fill the rest, and
	// more. (The bound of all hellos, DirectMaxHellos, would take more
	// source addresses than a test on 127.0.0.1 has.)
	silent := 0
	var over []net.Conn
	for range 2 * cluster.DirectMaxHellos {
		c := rawDirect(t, n2)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ch [cluster.DirectChallengeSize]byte
		if _, err := io.ReadFull(c, ch[:]); err == nil {
			silent++
		} else {
			over = append(over, c)
		}
	}
	if want := cluster.DirectMaxHellosPerHost - 1; silent != want || len(over) != 2*cluster.DirectMaxHellos-want {
		t.Fatalf("%d connections from one address challenged, %d closed at once; want %d and %d", silent, len(over), want, 2*cluster.DirectMaxHellos-want)
	}
	if now, _ := n2.c.Charged(); now != used {
		t.Fatalf("n2's account went from %d to %d with strangers' hellos", used, now)
	}
	if up, _ := n2.c.DirectUp("n1"); !up {
		t.Fatal("n2 lost its direct connection to n1")
	}
	if err := n2.c.WaitDirect(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
}

// TestDirectHostileLength: a connection whose hello checks out (here made
// with n1's credentials) and whose first length prefix is out of bounds —
// larger than any link message, or smaller than an envelope — is dropped
// by its reader before anything is allocated for the message; the link
// goes back to NATS, the nodes connect again, and requests go on.
func TestDirectHostileLength(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0"}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	serve(t, dial(t, n2, "length"), echo)
	requester := dial(t, n1, "length")
	for i, size := range []uint32{0xffffffff, 1 << 30, 0, 8} {
		bad := n2.c.DirectBadSizes()
		conn := rawDirect(t, n2)
		// The hello and the length prefix in one write: the reader
		// meets the prefix first thing.
		msg := n1.c.DirectHello(readChallenge(t, conn), "n2", n2.c.Incarnation(), uint64(100+i))
		msg = binary.BigEndian.AppendUint32(msg, size)
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(conn) {
			t.Fatalf("a length prefix of %d: the connection stayed open", size)
		}
		if n2.c.DirectBadSizes() != bad+1 {
			t.Fatalf("a length prefix of %d: the connection was not dropped for it", size)
		}
		waitAllDirect(ctx, t, n1, n2)
		callRetry(ctx, t, requester, "after a bad length")
	}
}
