package frameconn_test

import (
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// Helpers shared by the unit tests of each owner of a Conn (the reader,
// the writer, inline writes, the queue and keepalive).

// releaseAll is a handler that drops every frame it reads.
func releaseAll(f frame.Frame) error { f.Release(); return nil }

// rawFrame is the bytes of a chunk frame with sequence seq and payload p,
// as a peer writes them.
func rawFrame(seq uint32, p []byte) []byte {
	h := wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest, Sequence: seq, Length: uint32(len(p))}
	return append(wire.AppendHeader(nil, &h), p...)
}

// readRaw reads one raw frame from r, for goroutines that cannot call
// t.Fatal.
func readRaw(r io.Reader) (wire.Header, []byte, error) {
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return wire.Header{}, nil, err
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	_, err = io.ReadFull(r, p)
	return h, p, err
}

// memory is a frame.Memory that keeps its balance.
type memory = frameconn.Memory

// sentCounter is a frame.SentNotifier that counts the bytes it is told of.
type sentCounter struct{ n atomic.Int64 }

func (s *sentCounter) FrameSent(n int) { s.n.Add(int64(n)) }

// A writePath says which goroutine wrote a frame: the writer goroutine,
// or one that wrote it inline, and on which goroutine that was.
type writePath string

const (
	byWriter       writePath = "writer goroutine"
	inlineOnReader writePath = "inline on the reader goroutine"
	inlineOnCaller writePath = "inline on the caller"
	byUnknown      writePath = "unknown"
)

// currentPath tells from the calling goroutine's stack which path is
// writing: a notifier calls it when told of its frame.
func currentPath() writePath {
	buf := make([]byte, 16<<10)
	s := string(buf[:runtime.Stack(buf, false)])
	switch {
	case strings.Contains(s, "frameconn.(*Conn).writeLoop"):
		return byWriter
	case strings.Contains(s, "frameconn.(*Conn).writeInline") && strings.Contains(s, "frameconn.(*Conn).readLoop"):
		return inlineOnReader
	case strings.Contains(s, "frameconn.(*Conn).writeInline"):
		return inlineOnCaller
	}
	return byUnknown
}

// pathNotifier is a frame.TakeNotifier that records which path took its
// frame for writing and which one finished the write.
type pathNotifier struct {
	mu          sync.Mutex
	taken, sent writePath
	done        chan struct{} // closed by FrameSent
}

func newPathNotifier() *pathNotifier { return &pathNotifier{done: make(chan struct{})} }

func (p *pathNotifier) FrameTaken() {
	w := currentPath()
	p.mu.Lock()
	p.taken = w
	p.mu.Unlock()
}

func (p *pathNotifier) FrameSent(int) {
	w := currentPath()
	p.mu.Lock()
	p.sent = w
	p.mu.Unlock()
	close(p.done)
}

func (p *pathNotifier) paths() (taken, sent writePath) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken, p.sent
}

// noted is chunk(seq, payload) with n as its notifier.
func noted(seq uint32, payload []byte, n frame.SentNotifier) frame.Frame {
	f := chunk(seq, payload)
	f.Sent = n
	return f
}
