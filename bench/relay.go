package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// relaySystem is the floor for any design that puts a server between two
// peers: a TCP relay that pairs each requester connection with a private
// responder connection and copies length-prefixed frames (a 4-byte
// big-endian length, then the payload) between them, with no routing, no
// IDs and no flow control beyond TCP's.
//
// Each requester gets its own relayed pair, so the responders own many
// connections: responder r owns connections r, r+Responders,
// r+2*Responders... and reads each in its own goroutine, but answers one
// request at a time (a per-responder lock is held from the request's first
// byte to the response's flush), like the other systems' responders. With
// many requesters the relay is therefore a reference rather than a floor:
// requests queue in each pair's socket buffers, not at a server.
type relaySystem struct{}

func (relaySystem) Name() string { return "relay" }

// Accepts refuses fan-out shapes: the relay passes each request to one
// responder and has no way to reach them all.
func (relaySystem) Accepts(sh shape) bool { return !sh.Fanout }

// Connection roles, the first byte a relay connection sends.
const (
	roleRequester = 'Q'
	roleResponder = 'R'
)

// relayBufSize is the relay's and the endpoints' buffer size, the same as
// socketbus's frame buffers.
const relayBufSize = 64 << 10

// relayServer accepts connections and pairs each requester with the next
// waiting responder connection.
type relayServer struct {
	ln      net.Listener
	waiting chan net.Conn // responder connections not yet paired
	quit    chan struct{} // closed by close

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool

	wg sync.WaitGroup // accept loop, pairing and copy goroutines
}

func newRelayServer(ln net.Listener, maxResponderConns int) *relayServer {
	s := &relayServer{ln: ln, waiting: make(chan net.Conn, maxResponderConns), quit: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	s.wg.Go(s.accept)
	return s
}

func (s *relayServer) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return // closed
		}
		if !s.track(nc) {
			nc.Close()
			return
		}
		s.wg.Go(func() { s.serve(nc) })
	}
}

// track records nc so that close can close it; it reports false once the
// relay is closing.
func (s *relayServer) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

// serve reads nc's role; a responder connection waits to be paired, a
// requester connection is paired with one and relayed both ways.
func (s *relayServer) serve(nc net.Conn) {
	var role [1]byte
	if _, err := io.ReadFull(nc, role[:]); err != nil {
		return
	}
	switch role[0] {
	case roleResponder:
		select {
		case s.waiting <- nc:
		default:
			nc.Close() // more responder connections than announced
		}
	case roleRequester:
		var peer net.Conn
		select {
		case peer = <-s.waiting:
		case <-s.quit:
			return
		}
		s.wg.Go(func() { relay(peer, nc) })
		relay(nc, peer)
	}
}

// relay copies frames from src to dst until either fails, then closes both
// so that the other direction ends too. Reads are coalesced: dst is flushed
// only when src has nothing more buffered.
func relay(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	br := bufio.NewReaderSize(src, relayBufSize)
	bw := bufio.NewWriterSize(dst, relayBufSize)
	var hdr [4]byte
	for {
		if br.Buffered() == 0 && bw.Flush() != nil {
			return
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		if _, err := bw.Write(hdr[:]); err != nil {
			return
		}
		for left := int(binary.BigEndian.Uint32(hdr[:])); left > 0; {
			if br.Buffered() == 0 {
				if bw.Flush() != nil {
					return
				}
				if _, err := br.Peek(1); err != nil {
					return
				}
			}
			p, _ := br.Peek(min(left, br.Buffered()))
			if _, err := bw.Write(p); err != nil {
				return
			}
			br.Discard(len(p))
			left -= len(p)
		}
	}
}

// close stops accepting, closes every connection and waits for the relay's
// goroutines.
func (s *relayServer) close() {
	s.mu.Lock()
	s.done = true
	close(s.quit)
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	s.ln.Close()
	for nc := range conns {
		nc.Close()
	}
	s.wg.Wait()
}

// relayDeployment is a running relay with its endpoints.
type relayDeployment struct {
	srv       *relayServer
	endpoints []net.Conn
	reqs      []requester
	wg        sync.WaitGroup // responder goroutines

	mu      sync.Mutex
	respErr error // the first responder failure
}

func (relaySystem) Start(ctx context.Context, sh shape) (deployment, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	addr := ln.Addr().String()
	d := &relayDeployment{srv: newRelayServer(ln, sh.Requesters)}
	var dialer net.Dialer
	dial := func(role byte) (net.Conn, error) {
		nc, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("relay: dial: %w", err)
		}
		d.endpoints = append(d.endpoints, nc)
		if _, err := nc.Write([]byte{role}); err != nil {
			return nil, fmt.Errorf("relay: hello: %w", err)
		}
		return nc, nil
	}
	// Responder r owns connections r, r+Responders, r+2*Responders...:
	// one connection per requester, spread evenly.
	turns := make([]sync.Mutex, max(sh.Responders, 1))
	for i := range sh.Requesters {
		nc, err := dial(roleResponder)
		if err != nil {
			d.Close()
			return nil, err
		}
		turn := &turns[i%len(turns)]
		d.wg.Go(func() { d.respond(nc, turn, sh) })
	}
	for range sh.Requesters {
		nc, err := dial(roleRequester)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.reqs = append(d.reqs, newRelayEndpoint(nc))
	}
	return d, nil
}

// respond answers every request on one responder connection, holding its
// responder's turn while it reads a request and writes the response.
func (d *relayDeployment) respond(nc net.Conn, turn *sync.Mutex, sh shape) {
	e := newRelayEndpoint(nc)
	scratch := make([]byte, relayBufSize)
	for {
		if _, err := e.br.Peek(1); err != nil {
			return // closed
		}
		turn.Lock()
		err := e.answer(scratch, sh)
		turn.Unlock()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				d.fail(err)
			}
			return
		}
	}
}

// answer reads one request and writes the response.
func (e *relayEndpoint) answer(scratch []byte, sh shape) error {
	n, err := e.readFrame(scratch)
	if err != nil {
		return fmt.Errorf("relay: read request: %w", err)
	}
	if n != sh.RequestSize {
		return fmt.Errorf("relay: request of %d bytes, want %d", n, sh.RequestSize)
	}
	if err := e.writeFrame(sh.Response); err != nil {
		return fmt.Errorf("relay: write response: %w", err)
	}
	return nil
}

func (d *relayDeployment) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.respErr == nil {
		d.respErr = err
	}
}

func (d *relayDeployment) Requesters() []requester { return d.reqs }

func (d *relayDeployment) Close() error {
	for _, nc := range d.endpoints {
		nc.Close()
	}
	d.srv.close()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.respErr
}

// relayEndpoint reads and writes frames on one connection to the relay.
type relayEndpoint struct {
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	scratch []byte
}

func newRelayEndpoint(nc net.Conn) *relayEndpoint {
	return &relayEndpoint{nc: nc, br: bufio.NewReaderSize(nc, relayBufSize), bw: bufio.NewWriterSize(nc, relayBufSize)}
}

// writeFrame writes p as one frame and flushes it.
func (e *relayEndpoint) writeFrame(p []byte) error {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(p)))
	if _, err := e.bw.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := e.bw.Write(p); err != nil {
		return err
	}
	return e.bw.Flush()
}

// readFrame reads one frame through scratch, keeping none of it, and
// returns its length.
func (e *relayEndpoint) readFrame(scratch []byte) (int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(e.br, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	for left := n; left > 0; {
		m, err := e.br.Read(scratch[:min(left, len(scratch))])
		left -= m
		if err != nil {
			return 0, fmt.Errorf("frame cut short: %w", err)
		}
	}
	return n, nil
}

func (e *relayEndpoint) RoundTrip(ctx context.Context, body []byte) (int, error) {
	if e.scratch == nil {
		e.scratch = make([]byte, relayBufSize)
	}
	if err := e.writeFrame(body); err != nil {
		return 0, fmt.Errorf("relay: write request: %w", err)
	}
	n, err := e.readFrame(e.scratch)
	if err != nil {
		return 0, fmt.Errorf("relay: read response: %w", err)
	}
	return n, nil
}
