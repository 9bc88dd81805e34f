//go:build linux

package attack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
)

// flushSize is how many bytes of frames a rawConn gathers before writing
// them: big writes let one attacker keep a server core busy.
const flushSize = 256 << 10

// rawConn is an attacker's connection: the shared raw peer, writing
// frames in large batches. Every read and write on it fails at the
// deadline it was dialled with, so no attack outlives its time.
type rawConn struct {
	*testpeer.Conn

	idPrefix [8]byte // with idNext, the IDs newID makes: unique without a syscall each
	idNext   uint64

	readers sync.WaitGroup
}

// dialRaw connects to addr, joins channel and reads the acknowledgement.
// With rcvbuf > 0 the socket's receive buffer is set to rcvbuf bytes
// before it connects, so that a connection that does not read pushes its
// backlog back into the server sooner.
func dialRaw(addr string, channel wire.ID, deadline time.Time, rcvbuf int) (*rawConn, error) {
	return dialRawVersion(addr, channel, deadline, rcvbuf, wire.Version)
}

// dialRawVersion is dialRaw joining with protocol version.
func dialRawVersion(addr string, channel wire.ID, deadline time.Time, rcvbuf int, version uint8) (*rawConn, error) {
	d := &net.Dialer{Deadline: deadline}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	peer, err := testpeer.Open(addr, testpeer.Options{Deadline: deadline, Dialer: d, ReaderSize: 64 << 10})
	if err != nil {
		return nil, err
	}
	peer.Version = version
	if err := peer.JoinChannel(channel, nil); err != nil {
		peer.Close()
		return nil, err
	}
	c := &rawConn{Conn: peer}
	rand.Read(c.idPrefix[:])
	return c, nil
}

// newID returns an ID no other call returns.
func (c *rawConn) newID() wire.ID {
	var id wire.ID
	copy(id[:8], c.idPrefix[:])
	c.idNext++
	binary.BigEndian.PutUint64(id[8:], c.idNext)
	return id
}

// put appends a frame to the batch to write.
func (c *rawConn) put(typ wire.FrameType, flags wire.Flags, id wire.ID, seq uint32, final bool, timeout uint64, payload []byte) {
	h := c.Header(typ, flags, id)
	h.TimeoutMillis, h.Sequence, h.Final = timeout, seq, final
	c.Put(h, payload)
}

// flushIfFull writes the batch once it has grown to flushSize.
func (c *rawConn) flushIfFull() error {
	if c.Pending() < flushSize {
		return nil
	}
	return c.Flush()
}

// sync returns once the server has handled every frame c wrote before it
// (the server answers a ping after the frames before it), and how many
// other frames came first.
func (c *rawConn) sync() (int, error) {
	before, err := c.Ping()
	return len(before), err
}

// readFrames hands every frame the server sends to fn, in a goroutine,
// until the connection ends. Close waits for it.
func (c *rawConn) readFrames(fn func(h wire.Header, p []byte)) {
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		for {
			h, p, err := c.ReadFrame()
			if err != nil {
				return
			}
			fn(h, p)
		}
	}()
}

// discard reads and drops everything the server sends, in a goroutine.
func (c *rawConn) discard() {
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		io.Copy(io.Discard, c.NC)
	}()
}

// Close closes the connection and waits for its reader.
func (c *rawConn) Close() error {
	err := c.Conn.Close()
	c.readers.Wait()
	return err
}

// dialMany opens n raw connections on channel; on error it closes those it
// opened.
func dialMany(addr string, channel wire.ID, deadline time.Time, rcvbuf, n int) ([]*rawConn, error) {
	var cs []*rawConn
	for range n {
		c, err := dialRaw(addr, channel, deadline, rcvbuf)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*rawConn) {
	for _, c := range cs {
		c.Close()
	}
}

// zeros is the body of every attacker's chunk.
var zeros = make([]byte, wire.MaxFramePayload)

// streamer starts requests on one connection and sends their bodies in
// chunks of a fixed size, round robin, as fast as their credit allows and
// never beyond it: each chunk is one the protocol permits. It never ends
// a body.
type streamer struct {
	c       *rawConn
	chunk   int  // payload bytes per chunk
	grants  bool // spend the server's grants too, not just the initial credit
	streams []*stream
	byID    map[wire.ID]*stream
	kick    chan struct{} // capacity 1: a grant arrived

	chunks  atomic.Int64 // chunk frames written
	refused atomic.Int64 // requests the server ended with an error frame
}

// stream is one request a streamer sends.
type stream struct {
	id     wire.ID
	seq    uint32       // the next chunk's sequence number; owned by the writer
	credit atomic.Int64 // bytes it may still send
	dead   atomic.Bool  // the server ended it
}

// startStreams starts n requests on c, each with timeout in milliseconds,
// and reads what the server sends c from then on.
func startStreams(c *rawConn, n int, timeout uint64, chunk int, grants bool) (*streamer, error) {
	s := &streamer{c: c, chunk: chunk, grants: grants, byID: make(map[wire.ID]*stream, n), kick: make(chan struct{}, 1)}
	for range n {
		st := &stream{id: c.newID(), seq: 1}
		st.credit.Store(wire.InitialRequestCredit)
		s.streams = append(s.streams, st)
		s.byID[st.id] = st
		c.put(wire.TypeStart, wire.FlagRequest, st.id, 0, false, timeout, nil)
	}
	c.readFrames(s.handle)
	return s, c.Flush()
}

// handle takes one frame from the server: a grant adds credit, an error
// ends the stream.
func (s *streamer) handle(h wire.Header, p []byte) {
	st := s.byID[h.RequestID]
	if st == nil || h.Flags&wire.FlagRequest == 0 {
		return
	}
	switch {
	case h.Type == wire.TypeError:
		if !st.dead.Swap(true) {
			s.refused.Add(1)
		}
	case h.Flags == wire.FlagRequest|wire.FlagCredit && s.grants:
		n, err := wire.ParseCredit(p)
		if err != nil {
			return
		}
		st.credit.Add(int64(n))
	default:
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run sends chunks until ctx ends, a write fails, or, without grants,
// every stream has spent its initial credit.
func (s *streamer) run(ctx context.Context) error {
	const perRound = 512 // chunks per stream before moving on to the next
	for ctx.Err() == nil {
		progress := false
		for _, st := range s.streams {
			for range perRound {
				n := int(min(int64(s.chunk), st.credit.Load()))
				if n == 0 || st.dead.Load() {
					break
				}
				st.credit.Add(-int64(n))
				s.c.put(wire.TypeChunk, wire.FlagRequest, st.id, st.seq, false, 0, zeros[:n])
				st.seq++
				s.chunks.Add(1)
				progress = true
				if err := s.c.flushIfFull(); err != nil {
					return err
				}
			}
		}
		if err := s.c.Flush(); err != nil {
			return err
		}
		if progress {
			continue
		}
		if !s.grants {
			return nil
		}
		select {
		case <-s.kick:
		case <-ctx.Done():
		}
	}
	return nil
}
