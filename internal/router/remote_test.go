package router_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// crossing is the pair of remote members between two routers for one
// channel: A's remote receiver standing for B, and B's remote sender
// starting what A offers. pump carries their frames across, in order,
// until neither has anything new — the link of package cluster, by hand.
type crossing struct {
	t      *testing.T
	rx, tx member
	rxSeen int
	txSeen int
}

func newCrossing(t *testing.T, a, b *harness) *crossing {
	t.Helper()
	rxPeer, txPeer := newFakePeer("rx"), newFakePeer("tx")
	rx, err := a.r.JoinRemote(uuid.New(), a.ch, router.RemoteReceiver, rxPeer)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := b.r.JoinRemote(uuid.New(), b.ch, router.RemoteSender, txPeer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rx.Leave)
	t.Cleanup(tx.Leave)
	return &crossing{t: t, rx: member{rx, rxPeer}, tx: member{tx, txPeer}}
}

func (c *crossing) pump() {
	c.t.Helper()
	for {
		toB := c.rx.peer.all()[c.rxSeen:]
		toA := c.tx.peer.all()[c.txSeen:]
		if len(toB) == 0 && len(toA) == 0 {
			return
		}
		c.rxSeen += len(toB)
		c.txSeen += len(toA)
		for _, f := range toB {
			if err := c.tx.HandleRemote(f); err != nil {
				c.t.Fatalf("B's remote sender refused %v: %v", f.Header, err)
			}
		}
		for _, f := range toA {
			if err := c.rx.HandleRemote(f); err != nil {
				c.t.Fatalf("A's remote receiver refused %v: %v", f.Header, err)
			}
		}
	}
}

// twoNodes is one channel on two routers, with the same channel ID.
func twoNodes(t *testing.T) (a, b *harness, c *crossing) {
	a = newHarness(t, router.Config{})
	b = newHarness(t, router.Config{})
	b.ch = a.ch
	return a, b, newCrossing(t, a, b)
}

// TestRemoteClaimRefusedGoesBackToTheHead: a request offered to a node
// whose receiver is gone by the time it arrives is given back (returned),
// waits at the head of its own node's queue, and goes to the next receiver
// there; the other node never delivers it.
func TestRemoteClaimRefusedGoesBackToTheHead(t *testing.T) {
	a, b, c := twoNodes(t)
	requester := a.join("requester")
	receiverB := b.join("receiver on B")
	c.rx.SetRemoteCredit(1) // B said it had a receiver waiting; it has none now
	id := uuid.New()
	requester.send(t, id, "hello")
	c.pump()
	if got := channelStats(t, a.r, a.ch).Queued; got != 1 {
		t.Fatalf("after the refusal, A's queue holds %d requests, want 1", got)
	}
	if len(receiverB.peer.matching(anyDelivery)) != 0 {
		t.Fatalf("B delivered a request it refused")
	}
	local := a.join("receiver on A")
	local.poll(t, uuid.New())
	local.peer.waitFor(t, "delivery on A", isDelivery(id))
	local.respond(t, id, "from A")

	// The same request offered again after a return starts afresh on B:
	// B keeps no tombstone of the refusal.
	id2 := uuid.New()
	requester.send(t, id2, "again")
	c.rx.SetRemoteCredit(1)
	c.pump()
	if got := channelStats(t, a.r, a.ch).Queued; got != 1 {
		t.Fatalf("A's queue holds %d requests, want 1 (refused again)", got)
	}
	receiverB.poll(t, uuid.New())
	c.rx.SetRemoteCredit(1)
	c.pump()
	receiverB.peer.waitFor(t, "delivery on B", isDelivery(id2))
	receiverB.respond(t, id2, "from B")
	c.pump()
	if n := len(requester.peer.matching(func(h *wire.Header) bool {
		return h.RequestID == id2 && h.Flags == wire.FlagResponse && h.Type == wire.TypeEnd
	})); n != 1 {
		t.Fatalf("the requester got %d response ends, want 1", n)
	}
	if got := channelStats(t, a.r, a.ch).Outcomes[router.OutcomeCompleted]; got != 2 {
		t.Fatalf("A counted %d completed requests, want 2", got)
	}
}

// TestRemoteLocalReceiverFirst: with a local receiver waiting and credit
// for a remote one, a request goes to the local receiver.
func TestRemoteLocalReceiverFirst(t *testing.T) {
	a, _, c := twoNodes(t)
	requester, local := a.join("requester"), a.join("local")
	c.rx.SetRemoteCredit(8)
	local.poll(t, uuid.New())
	id := uuid.New()
	requester.send(t, id, "x")
	local.peer.waitFor(t, "local delivery", isDelivery(id))
	if n := len(c.rx.peer.matching(anyDelivery)); n != 0 {
		t.Fatalf("the remote receiver was offered %d requests, want 0", n)
	}
}

// TestRemoteDrainedReceiver: a drained remote receiver is no peer — a
// sender alone with it is told no_peers — but stays until the request it
// holds ends, so that request's answer still arrives.
func TestRemoteDrainedReceiver(t *testing.T) {
	a, b, c := twoNodes(t)
	requester := a.join("requester")
	receiverB := b.join("receiver on B")
	receiverB.poll(t, uuid.New())
	c.rx.SetRemoteCredit(1)
	held := uuid.New()
	requester.send(t, held, "held")
	c.pump()
	receiverB.peer.waitFor(t, "delivery on B", isDelivery(held))

	c.rx.Drain()
	if c.rx.LeaveIfDrained() {
		t.Fatalf("a drained remote receiver holding a request left")
	}
	refused := uuid.New()
	requester.start(t, refused, 0)
	if _, e := requester.peer.waitError(t, refused); e.Code != wire.CodeNoPeers {
		t.Fatalf("a request with only a drained remote receiver: %v, want no_peers", e)
	}
	receiverB.respond(t, held, "done")
	c.pump()
	if !c.rx.LeaveIfDrained() {
		t.Fatalf("the drained remote receiver did not leave once its request ended")
	}
	if got := channelStats(t, a.r, a.ch).Outcomes[router.OutcomeCompleted]; got != 1 {
		t.Fatalf("A counted %d completed requests, want 1", got)
	}
}

// TestRemoteSenderRequestsCrossOneLink: a request a remote sender starts
// is claimed by a local receiver or returned — never offered to another
// node's remote receiver.
func TestRemoteSenderRequestsCrossOneLink(t *testing.T) {
	a, b, c := twoNodes(t)
	requester := a.join("requester")
	onwardPeer := newFakePeer("B's remote receiver for C")
	onward, err := b.r.JoinRemote(uuid.New(), b.ch, router.RemoteReceiver, onwardPeer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(onward.Leave)
	onward.SetRemoteCredit(8)
	c.rx.SetRemoteCredit(1)
	id := uuid.New()
	requester.send(t, id, "x")
	c.pump()
	if got := channelStats(t, a.r, a.ch).Queued; got != 1 {
		t.Fatalf("A's queue holds %d requests, want 1: B gives the request back", got)
	}
	if got := channelStats(t, b.r, b.ch).InFlight; got != 0 {
		t.Fatalf("B holds %d requests, want 0", got)
	}
	if n := len(onwardPeer.matching(anyDelivery)); n != 0 {
		t.Fatalf("B offered a request from another node onward %d times", n)
	}
}
