package cluster

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/budget"
)

// TestDirectQueueGrowsCharged: a connection's write queue passes its base
// while its writer is not stuck, each step charged to the account before
// the bytes are queued, and gives the steps back once the writer has
// written the queue down; it does not grow for a writer whose write has
// not finished for directStall, nor past directQueueMax.
func TestDirectQueueGrowsCharged(t *testing.T) {
	const base = 64 << 10
	c := &Cluster{cfg: Config{direct: directKnobs{queue: base}}, directConns: map[*directConn]struct{}{}, directDown: make(chan struct{})}
	acct := budget.New(1<<30, nil)
	cost := c.directCost()
	if !acct.TryCharge(cost) {
		t.Fatal("the account refused the connection's charge")
	}
	near, far := net.Pipe()
	defer near.Close()
	defer far.Close()
	d := newDirectConn(c, nil, 1, near, near)
	d.setBuffers(acct)

	msg := make([]byte, 64<<10)
	const total = 3 << 20
	for queued := 0; queued < total; queued += len(msg) {
		if !d.enqueue(msg[:77], msg[77:]) {
			t.Fatalf("enqueue refused at %d bytes queued (base %d), with a writer not stuck", queued, base)
		}
	}
	if got, want := acct.Used(), cost+int64(total-base); got < want {
		t.Fatalf("the account holds %d with %d bytes queued, want at least %d (the connection and what passes the base)", got, total, want)
	}

	// The writer writes the queue down (the far side reads it all): the
	// steps past the base go back.
	d.wmu.Lock()
	blocks := d.pending
	d.pending = nil
	d.wmu.Unlock()
	size := 0
	for _, b := range blocks {
		size += len(b)
	}
	if size != total {
		t.Fatalf("the queue's blocks hold %d bytes, want %d", size, total)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, far, int64(size))
		read <- err
	}()
	for _, b := range blocks {
		if err := d.write(b, 10*time.Second); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := <-read; err != nil {
		t.Fatalf("read: %v", err)
	}
	if got := acct.Used(); got != cost {
		t.Fatalf("the account holds %d with the queue written, want %d (the connection's charge alone)", got, cost)
	}

	// A write under way for longer than directStall: the peer does not
	// read, and the queue may not pass its base.
	d.wmu.Lock()
	d.writeSince = time.Now().Add(-2 * directStall)
	d.wmu.Unlock()
	filled := 0
	for d.enqueue(msg, nil) {
		filled += len(msg)
		if filled > base {
			t.Fatalf("the queue grew to %d bytes past its base %d while its writer was stuck", filled, base)
		}
	}
	d.wmu.Lock()
	d.writeSince = time.Time{}
	d.wmu.Unlock()
	if d.enqueue(make([]byte, directQueueMax), nil) {
		t.Fatalf("the queue grew past directQueueMax (%d)", directQueueMax)
	}
	d.close()
	if got := acct.Used(); got != 0 {
		t.Fatalf("the account holds %d once the connection closed, want 0", got)
	}
}
