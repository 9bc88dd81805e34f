package frameconn_test

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestReaderPausesPastMaxQueuedBytes: while the frames queued for a peer
// cost more than MaxQueuedBytes, the reader reads nothing more from it;
// it resumes once the writer has written them.
func TestReaderPausesPastMaxQueuedBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		const limit = 4 << 10
		c := frameconn.New(a, frameconn.Config{MaxQueuedBytes: limit})
		var handled atomic.Int32
		c.Start(func(f frame.Frame) error {
			seq := f.Header.Sequence
			f.Release()
			handled.Add(1)
			// Each reply alone costs more than the limit.
			return c.EnqueueIn(chunk(seq, make([]byte, 2*limit)), c.ReadBatch())
		})
		const requests = 3
		go func() {
			for i := range uint32(requests) {
				if _, err := b.Write(rawFrame(i, nil)); err != nil {
					return
				}
			}
		}()
		for i := range int32(requests) {
			synctest.Wait() // the peer does not read: the reader stops
			if got := handled.Load(); got != i+1 {
				t.Fatalf("with %d replies unread: the handler saw %d frames, want %d", i, got, i+1)
			}
			if q := c.QueuedBytes(); q <= limit {
				t.Fatalf("reply %d queued: QueuedBytes = %d, want more than the limit %d", i, q, limit)
			}
			if h, p := readFrame(t, b); h.Sequence != uint32(i) || len(p) != 2*limit {
				t.Fatalf("got reply %d with %d bytes, want reply %d with %d", h.Sequence, len(p), i, 2*limit)
			}
		}
		synctest.Wait()
		if q := c.QueuedBytes(); q != 0 {
			t.Fatalf("every reply read: QueuedBytes = %d, want 0", q)
		}
		c.Close(nil)
		c.Wait()
	})
}

// TestSlowConsumerCut: control frames queued for a peer that does not
// read may cost up to MaxControlBytes; one more cuts the connection with
// ErrSlowConsumer, which OnClose and Err report. Flow-controlled frames
// (with a SentNotifier) and paid-for ones (with a Payer) do not count.
// Every charge to the account and the payer is released in the end.
func TestSlowConsumerCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		const frames = 10
		account, payer := &memory{}, &memory{}
		c := frameconn.New(a, frameconn.Config{MaxControlBytes: frames * frame.Overhead, Account: account})
		closed := make(chan error, 1)
		c.SetOnClose(func(err error) { closed <- err })
		c.Start(releaseAll)
		control := func() frame.Frame {
			return frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest}}
		}
		isOpen := func(when string) {
			t.Helper()
			synctest.Wait()
			select {
			case err := <-closed:
				t.Fatalf("%s: closed with %v, want open", when, err)
			default:
			}
		}
		for i := range frames {
			if err := c.Enqueue(control()); err != nil {
				t.Fatalf("control frame %d: %v", i, err)
			}
		}
		isOpen("control frames costing exactly MaxControlBytes")
		if got, want := account.Held(), int64(frames*frame.Overhead); got < want {
			t.Fatalf("account charged %d, want at least the %d of the queued control frames", got, want)
		}

		relayed := chunk(1, make([]byte, 8<<10))
		relayed.Sent = &sentCounter{}
		paid := chunk(2, make([]byte, 8<<10))
		paid.Payer = payer
		if err := c.EnqueueAll([]frame.Frame{relayed, paid}); err != nil {
			t.Fatal(err)
		}
		isOpen("a relayed frame and a paid-for one beyond MaxControlBytes")
		if got, want := payer.Held(), frame.Cost(&paid); got != want {
			t.Fatalf("payer charged %d, want %d", got, want)
		}

		if err := c.Enqueue(control()); err != nil {
			t.Fatalf("the control frame past the cap: %v", err)
		}
		synctest.Wait()
		select {
		case err := <-closed:
			if !errors.Is(err, frameconn.ErrSlowConsumer) {
				t.Fatalf("OnClose(%v), want ErrSlowConsumer", err)
			}
		default:
			t.Fatal("open with control frames past MaxControlBytes, want cut")
		}
		if err := c.Err(); !errors.Is(err, frameconn.ErrSlowConsumer) {
			t.Fatalf("Err = %v, want ErrSlowConsumer", err)
		}
		if err := c.Enqueue(control()); !errors.Is(err, frameconn.ErrClosed) {
			t.Fatalf("Enqueue after the cut = %v, want ErrClosed", err)
		}
		c.Wait()
		if n := account.Held(); n != 0 {
			t.Fatalf("account holds %d after the close, want 0", n)
		}
		if n := payer.Held(); n != 0 {
			t.Fatalf("payer holds %d after the close, want 0", n)
		}
		if q := c.QueuedBytes(); q != 0 {
			t.Fatalf("QueuedBytes = %d after the close, want 0", q)
		}
	})
}

// TestStreamFramesDoNotPauseTheReader: a server and a client that each
// queue the other more stream bytes than MaxQueuedBytes — the server
// relayed ones (frames with a SentNotifier) and control frames besides,
// the client its own body's chunks (FlowControlled) — both end up
// reading, so both queues drain.
// Before, each reader paused on its own queue: neither side read what the
// other wrote, and the two writers waited on each other for ever (in
// production, until the server's WriteTimeout cut the client and its
// requests ended with peer_gone). Stream bytes are bounded by the credit
// the peer granted; only what the peer can grow without it pauses.
func TestStreamFramesDoNotPauseTheReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		const limit, frames = 4 << 10, 8
		var handled [2]atomic.Int32
		ends := [2]*frameconn.Conn{ // the server's end, the client's
			frameconn.New(a, frameconn.Config{MaxQueuedBytes: limit}),
			frameconn.New(b, frameconn.Config{MaxQueuedBytes: limit}),
		}
		for i, c := range ends {
			c.Start(func(f frame.Frame) error {
				f.Release()
				handled[i].Add(1)
				return nil
			})
		}
		// The server queues the client relayed stream frames, and control
		// frames past the limit too, on which it rightly pauses until the
		// client reads; the client queues its own body's chunks.
		var relayed sentCounter
		queued := [2]int{2 * frames, frames}
		for i, c := range ends {
			fs := make([]frame.Frame, queued[i])
			for seq := range fs {
				fs[seq] = chunk(uint32(seq), make([]byte, 2*limit))
				switch {
				case i == 1:
					fs[seq].FlowControlled = true
				case seq < frames:
					fs[seq].Sent = &relayed
				}
			}
			if err := c.EnqueueAll(fs); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		for i, who := range []string{"the server", "the client"} {
			if got := handled[1-i].Load(); got != int32(queued[i]) {
				t.Errorf("%s queued %d frames to the other, which read %d of them", who, queued[i], got)
			}
		}
		if got, want := relayed.n.Load(), int64(frames*2*limit); got != want {
			t.Errorf("%d relayed stream bytes written, want %d", got, want)
		}
		for _, c := range ends {
			c.Close(nil)
		}
		for _, c := range ends {
			c.Wait()
		}
	})
}
