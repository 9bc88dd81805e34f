package cluster_test

import (
	"testing"

	"github.com/socketbus/socketbus/server"
)

// TestByeNotUndoneByALateAnnouncement: on the NATS path (no direct
// connections), a node's announcements and its bye come on different
// subjects, which the node handles on different goroutines, so an
// announcement sent before the bye may be handled after it. n2 closes
// (it says bye) and n1 forgets it; then an announcement of n2's, in the
// incarnation that said bye, comes late: n1 does not bring n2 back (it
// would count for three heartbeats, and joins would wait for its
// acknowledgements). An announcement of a new incarnation — n2 restarted
// — is a new node, and is heard.
func TestByeNotUndoneByALateAnnouncement(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	n1, n2 := b.node(0), b.node(1)
	inc := n2.c.Incarnation()
	b.kill(1)
	waitNodes(t, n1.c, 1)
	n1.c.Heard("n2 " + inc)
	if got := n1.c.Nodes(); got != 1 {
		t.Fatalf("n1 sees %d nodes after a late announcement of n2, which said bye; want 1", got)
	}
	n1.c.Heard("n2 0123456789abcdef")
	if got := n1.c.Nodes(); got != 2 {
		t.Fatalf("n1 sees %d nodes after an announcement of n2 restarted, want 2", got)
	}
}
