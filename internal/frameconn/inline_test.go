package frameconn_test

import (
	"bytes"
	"net"
	"testing"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
)

// TestInlineWriteOnTheReader: with InlineWrites and an idle writer, the
// replies a handler queues in the read batch are written by the reader
// goroutine itself when it flushes the batch, not handed to the writer.
func TestInlineWriteOnTheReader(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{InlineWrites: true})
	notes := make(chan *pathNotifier, 100)
	c.Start(func(f frame.Frame) error {
		seq := f.Header.Sequence
		f.Release()
		n := newPathNotifier()
		notes <- n
		return c.EnqueueIn(noted(seq, []byte("reply"), n), c.ReadBatch())
	})
	// One frame at a time, each after the last reply: the writer is idle
	// every time.
	for i := range uint32(20) {
		if _, err := b.Write(rawFrame(i, []byte("request"))); err != nil {
			t.Fatal(err)
		}
		h, p := readFrame(t, b)
		if h.Sequence != i || string(p) != "reply" {
			t.Fatalf("reply %d: got seq %d %q, want seq %d %q", i, h.Sequence, p, i, "reply")
		}
		n := <-notes
		<-n.done
		taken, sent := n.paths()
		if taken != inlineOnReader || sent != inlineOnReader {
			t.Fatalf("reply %d: taken by the %s and finished by the %s, want both %s", i, taken, sent, inlineOnReader)
		}
	}
	c.Close(nil)
	c.Wait()
}

// TestInlineWritesWithoutASyscallConnUseTheWriter: over a socket that
// offers no syscall.Conn (net.Pipe) InlineWrites is ignored, and the
// writer goroutine writes everything.
func TestInlineWritesWithoutASyscallConnUseTheWriter(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := frameconn.New(a, frameconn.Config{InlineWrites: true})
	c.Start(releaseAll)
	n := newPathNotifier()
	if err := c.EnqueueAllInline([]frame.Frame{noted(1, []byte("x"), n)}); err != nil {
		t.Fatal(err)
	}
	readFrame(t, b)
	c.Close(nil)
	c.Wait() // FrameSent comes before the writer stops
	if taken, sent := n.paths(); taken != byWriter || sent != byWriter {
		t.Fatalf("taken by the %s and finished by the %s, want both by the %s", taken, sent, byWriter)
	}
}

// TestInlineWriteHandsTheRestToTheWriter: an inline write the socket does
// not take whole is finished by the writer goroutine; while it is, frames
// queued inline go to the writer too; and the peer gets every frame once,
// in the order it was queued.
func TestInlineWriteHandsTheRestToTheWriter(t *testing.T) {
	a, b := pair(t)
	// Small socket buffers fill after a few frames.
	if err := a.(*net.TCPConn).SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	if err := b.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	c := frameconn.New(a, frameconn.Config{InlineWrites: true})
	c.Start(releaseAll)

	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 3<<10) }
	var notes []*pathNotifier
	enqueue := func(inline bool) {
		i := len(notes)
		n := newPathNotifier()
		notes = append(notes, n)
		f := noted(uint32(i), payload(i), n)
		var err error
		if inline {
			err = c.EnqueueAllInline([]frame.Frame{f})
		} else {
			err = c.Enqueue(f)
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	// The peer does not read: inline writes go whole into the socket until
	// one does not fit, and stays queued after EnqueueAllInline returns.
	for c.QueuedBytes() == 0 {
		if len(notes) == 10000 {
			t.Fatalf("%d frames written inline, and the socket still takes more", len(notes))
		}
		enqueue(true)
	}
	full := len(notes) - 1
	// The writer is finishing that write: what is queued now waits for it.
	for i := range 10 {
		enqueue(i%2 == 0)
	}
	for i := range notes {
		h, p := readFrame(t, b)
		if h.Sequence != uint32(i) || !bytes.Equal(p, payload(i)) {
			t.Fatalf("frame %d: got seq %d, want seq %d with its payload", i, h.Sequence, i)
		}
	}
	c.Close(nil)
	c.Wait()
	for i, n := range notes {
		taken, sent := n.paths()
		want := [2]writePath{inlineOnCaller, inlineOnCaller}
		switch {
		case i == full:
			want = [2]writePath{inlineOnCaller, byWriter}
		case i > full:
			want = [2]writePath{byWriter, byWriter}
		}
		if [2]writePath{taken, sent} != want {
			t.Errorf("frame %d of %d (the socket filled at %d): taken by the %s and finished by the %s, want %s and %s",
				i, len(notes), full, taken, sent, want[0], want[1])
		}
	}
}

// TestInlineWritesKeepTheOrder: frames one goroutine queues through the
// read batch, straight to the writer and inline, in any mix, reach the
// peer in the order they were queued.
func TestInlineWritesKeepTheOrder(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{InlineWrites: true})
	const perRequest = 4
	c.Start(func(f frame.Frame) error {
		seq := perRequest * f.Header.Sequence
		f.Release()
		small, large := []byte("small"), make([]byte, 5<<10) // a large payload is never written inline
		if err := c.EnqueueIn(chunk(seq, small), c.ReadBatch()); err != nil {
			return err
		}
		if err := c.Enqueue(chunk(seq+1, large)); err != nil {
			return err
		}
		if err := c.EnqueueIn(chunk(seq+2, small), c.ReadBatch()); err != nil {
			return err
		}
		return c.EnqueueAllInline([]frame.Frame{chunk(seq+3, small)})
	})
	const requests = 300
	go func() {
		// Bursts, so that the reader handles several frames per flush.
		var burst []byte
		for i := range uint32(requests) {
			burst = append(burst, rawFrame(i, nil)...)
			if i%7 == 6 || i == requests-1 {
				if _, err := b.Write(burst); err != nil {
					return
				}
				burst = burst[:0]
			}
		}
	}()
	for i := range uint32(perRequest * requests) {
		if h, _ := readFrame(t, b); h.Sequence != i {
			t.Fatalf("got frame %d, want %d", h.Sequence, i)
		}
	}
	c.Close(nil)
	c.Wait()
}
