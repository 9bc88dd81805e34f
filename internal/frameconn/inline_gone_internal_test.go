//go:build unix

package frameconn

import (
	"syscall"
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestInlineRestAfterTheWriterStopped: an inline write that the socket
// takes only in part, while the connection closes and its writer stops,
// finishes its batch itself: nobody is left to write the rest. Its frames
// are released and uncharged, its scratch buffer too, and WaitWrites
// returns. Before, it handed the rest to the writer that had gone: the
// frames' pooled payloads leaked (seen once in TestCrossNodeChaos), the
// account kept their charge, and WaitWrites never returned.
func TestInlineRestAfterTheWriterStopped(t *testing.T) {
	near, _ := Pair(t)
	acct := &Memory{}
	c := New(near, Config{InlineWrites: true, Account: acct})
	if c.raw == nil {
		t.Fatal("a TCP connection offers no raw socket for inline writes")
	}
	// The socket takes one byte of the batch; then the connection closes
	// and its writer stops before the inline write looks at what is left.
	c.inlineWrite = func(fd uintptr) bool {
		c.inlineN, c.inlineErr = syscall.Write(int(fd), c.inlineBuf[:1])
		go c.Close(nil)
		c.wg.Wait() // the reader and the writer have returned
		return true
	}
	c.Start(func(f frame.Frame) error { f.Release(); return nil })
	payload := frame.GetBuffer(1000)
	f := frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest},
		Payload: payload, Pooled: true}
	if err := c.EnqueueAllInline([]frame.Frame{f}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		c.WaitWrites()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WaitWrites did not return: the batch's rest waits for a writer that has gone")
	}
	c.Wait()
	if q := c.QueuedBytes(); q != 0 {
		t.Fatalf("QueuedBytes = %d after the close, want 0", q)
	}
	if n := acct.Held(); n != 0 {
		t.Fatalf("the account holds %d bytes after the close, want 0", n)
	}
}
