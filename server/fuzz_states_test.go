package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// FuzzServerStates drives four raw connections, three on one channel and
// one on another, against one in-process server. The input is a program:
// each step picks a connection and an action, and the action takes its
// arguments from the states that connection has built up (requests it
// started, requests delivered to it by its polls, responses it is writing,
// polls waiting) or from the other connections' (IDs, client IDs, the
// other channel), or is a raw frame with fuzzer-chosen type, flags,
// sequence, credit and IDs. Frames are always whole (the length is the
// payload's), so a step never leaves the server waiting inside a frame;
// FuzzServerConn fuzzes the framing itself.
//
// After every step the acting connection pings the server and waits for
// the pong (the server has handled the step), and the server's Stats must
// be consistent. At the end every connection still open cancels what it
// has not seen end and pings again; then each request it started must
// have ended exactly once: one error frame or one response end. Finally
// the connections close, the server must forget them (no connection, no
// channel and no request left), and a bystander pair on its own channel
// must complete a round trip.
func FuzzServerStates(f *testing.F) {
	cfg := server.Config{JoinTimeout: 5 * time.Second, FrameReadTimeout: 5 * time.Second}
	srv, addr := startServer(f, cfg)
	by := uuid.New()
	byA := dial(f, addr, by)
	byB := dial(f, addr, by)
	f.Cleanup(hardResponders([]*socketbus.Client{byB}, 1, nil))
	baseConns := srv.Stats().Connections

	for _, seed := range fzStateSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, program []byte) {
		chA, chB := uuid.New(), uuid.New()
		var conns []*fzConn
		defer func() {
			for _, c := range conns {
				c.close()
			}
		}()
		for i := range fzConns {
			ch := chA
			if i == fzConns-1 {
				ch = chB
			}
			c, err := fzDial(addr, ch, i)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		p := &fzProgram{data: program}
		var log []string
		for step := 0; step < fzMaxSteps && !p.done(); step++ {
			op := p.byte()
			c := conns[int(op)%fzConns]
			if c.isDead() {
				continue
			}
			what := c.act(int(op)/fzConns, p, conns, chA, chB)
			log = append(log, fmt.Sprintf("%d: conn %d %s", step, c.idx, what))
			// The acting connection's pong says the server has handled the
			// step; then the others' say they have read what it sent them.
			if err := c.sync(); err != nil {
				t.Fatalf("after step %s: %v\nprogram:\n%s", log[len(log)-1], err, strings.Join(log, "\n"))
			}
			for _, o := range conns {
				if o == c || o.isDead() {
					continue
				}
				if err := o.sync(); err != nil {
					t.Fatalf("after step %s: %v\nprogram:\n%s", log[len(log)-1], err, strings.Join(log, "\n"))
				}
			}
			if err := fzCheckOpenOnce(conns); err != nil {
				t.Fatalf("after step %s: %v\nprogram:\n%s", log[len(log)-1], err, strings.Join(log, "\n"))
			}
			if err := fzCheckStats(srv.Stats(), cfg); err != nil {
				t.Fatalf("after step %s: %v\nprogram:\n%s", log[len(log)-1], err, strings.Join(log, "\n"))
			}
		}

		// Every connection still open cancels what it has not seen end,
		// then pings: by the pong, each of its requests has ended.
		for _, c := range conns {
			if !c.isDead() {
				c.cancelOpen()
			}
		}
		for _, c := range conns {
			if c.isDead() {
				continue
			}
			if err := c.sync(); err != nil {
				t.Fatalf("after the cancels: %v\nprogram:\n%s", err, strings.Join(log, "\n"))
			}
		}
		for _, c := range conns {
			if err := c.check(); err != nil {
				t.Fatalf("%v\nprogram:\n%s", err, strings.Join(log, "\n"))
			}
		}

		for _, c := range conns {
			c.close()
		}
		if err := fzSettle(t, srv, baseConns, chA, chB); err != nil {
			t.Fatalf("after closing every connection: %v\nprogram:\n%s", err, strings.Join(log, "\n"))
		}
		if testing.Verbose() {
			t.Logf("program:\n%s", strings.Join(log, "\n"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if got, err := roundTrip(ctx, byA, []byte("still serving")); err != nil || string(got) != "STILL SERVING" {
			t.Fatalf("bystander round trip: got %q, %v; want %q, nil\nprogram:\n%s", got, err, "STILL SERVING", strings.Join(log, "\n"))
		}
	})
}

const (
	fzConns    = 4  // raw connections per input: 0 to 2 on one channel, 3 on another
	fzMaxSteps = 96 // steps run per input; the rest is ignored
	fzWait     = 10 * time.Second
)

// Actions, the step byte divided by fzConns, modulo fzActions.
const (
	fzStart     = iota // start a request
	fzChunk            // a chunk of one of its request bodies, within credit
	fzEnd              // end one of its request bodies
	fzCancel           // error|request: cancelled, aborted or timeout
	fzPoll             // a Receive poll
	fzWithdraw         // withdraw a waiting poll
	fzGrantBody        // receive|credit on a request delivered to it
	fzRespStart        // start the response to a delivered request
	fzRespChunk        // a chunk of a response, within credit
	fzRespEnd          // end a response
	fzFail             // error|response remote
	fzGrantResp        // response|credit on one of its own requests
	fzPing             // a ping with up to 8 bytes
	fzRaw              // a frame with fuzzer-chosen fields
	fzActions
)

// fzStateSeeds are the seed programs. A step is an op byte (connection
// op%4, action op/4) and the action's argument bytes.
var fzStateSeeds = [][]byte{
	// The two-frame crash: conn 0 starts a request, which queues (conn 1
	// never polls), then grants response credit for it: a response stream
	// with no receiver.
	{fzOp(0, fzStart), 3, fzOp(0, fzGrantResp), 0, 0},
	// A whole exchange: conn 1 polls, conn 0 sends "body", conn 1 answers.
	{fzOp(1, fzPoll), fzOp(0, fzStart), 3, fzOp(0, fzChunk), 0, 4, fzOp(0, fzEnd), 0,
		fzOp(1, fzRespStart), 0, fzOp(1, fzRespChunk), 0, 5, fzOp(1, fzRespEnd), 0},
	// A delivered request cancelled by its sender, then a late response.
	{fzOp(2, fzPoll), fzOp(0, fzStart), 3, fzOp(0, fzCancel), 0, 0, fzOp(2, fzRespStart), 0, fzOp(2, fzRespEnd), 0},
	// Credit for the receiver, a poll withdrawn, a failed request.
	{fzOp(1, fzPoll), fzOp(1, fzPoll), fzOp(1, fzWithdraw), 1, fzOp(0, fzStart), 3, fzOp(0, fzChunk), 0, 200,
		fzOp(1, fzGrantBody), 0, 100, fzOp(1, fzFail), 0, fzOp(0, fzEnd), 0},
	// A request with a 1 ms timeout, a raw frame naming another client.
	{fzOp(1, fzPoll), fzOp(0, fzStart), 1, fzOp(0, fzRaw), 2, 0, 3, 1, 2, 0, 4, 0, fzOp(3, fzStart), 3},
	// The other channel's connection alone: refused starts, pings.
	{fzOp(3, fzStart), 0, fzOp(3, fzPing), 8, fzOp(3, fzRaw), 1, 2, 0, 0, 0, 0, 0, 0},
	// An ID taken again while its receiver may still send for it (CI found
	// it, with a peer_gone end): conn 1 is handed conn 0's request, conn 0
	// cancels it, conn 1 polls again, and conn 2 starts a request of its
	// own under the same ID. Handing it to conn 1 would make conn 1's late
	// frames for the first one frames of conn 2's.
	{fzOp(1, fzPoll), fzOp(0, fzStart), 3, fzOp(0, fzCancel), 0, 0, fzOp(1, fzPoll),
		fzOp(2, fzRaw), 0, 0, 0, 0, 0, 0, 0, 0},
}

func fzOp(conn, action int) byte { return byte(action*fzConns + conn) }

// fzProgram reads a program's bytes; past the end every byte is 0.
type fzProgram struct {
	data []byte
	pos  int
}

func (p *fzProgram) done() bool { return p.pos >= len(p.data) }

func (p *fzProgram) byte() byte {
	if p.pos >= len(p.data) {
		return 0
	}
	b := p.data[p.pos]
	p.pos++
	return b
}

func (p *fzProgram) pick(n int) int {
	if n == 0 {
		return 0
	}
	return int(p.byte()) % n
}

// fzSent is a request a connection started, as that connection sees it.
type fzSent struct {
	seq         uint32 // the next body frame's sequence
	credit      int    // body bytes it may still send
	chunks      int
	bodyEnded   bool
	respBytes   int // response bytes received
	respGranted int // of which granted back
	terminals   int // error frames and response ends received for it
}

// fzHeld is a request delivered to a connection.
type fzHeld struct {
	bytes, granted int // body bytes received, and granted back
	ended          int // error frames received for it
	respStarted    bool
	respEnded      bool // it wrote its response's end
	failed         bool // it wrote error|response
	respSeq        uint32
	respChunks     int
	respCredit     int
}

// fzConn is one raw connection and what it has seen. Its reader goroutine
// updates the state; the fuzz goroutine writes frames and reads the state.
type fzConn struct {
	idx  int
	peer *testpeer.Conn // its frames; only the reader goroutine reads
	done chan struct{}  // closed when the reader has stopped

	mu         sync.Mutex
	dead       string // why the connection ended, or ""
	sent       map[socketbus.ID]*fzSent
	sentOrder  []socketbus.ID
	held       map[socketbus.ID]*fzHeld
	heldOrder  []socketbus.ID
	polls      map[socketbus.ID]bool
	pollOrder  []socketbus.ID
	pongs      map[socketbus.ID]chan struct{}
	violations []string
}

func fzDial(addr string, channel socketbus.ID, idx int) (*fzConn, error) {
	peer, err := testpeer.Open(addr, testpeer.Options{Deadline: time.Now().Add(fzWait)})
	if err != nil {
		return nil, err
	}
	if err := peer.JoinChannel(channel, nil); err != nil {
		peer.Close()
		return nil, err
	}
	peer.NC.SetDeadline(time.Time{})
	c := &fzConn{idx: idx, peer: peer, done: make(chan struct{}),
		sent: map[socketbus.ID]*fzSent{}, held: map[socketbus.ID]*fzHeld{}, polls: map[socketbus.ID]bool{},
		pongs: map[socketbus.ID]chan struct{}{}}
	go c.read()
	return c, nil
}

func (c *fzConn) header(typ wire.FrameType, flags wire.Flags, id socketbus.ID) wire.Header {
	return c.peer.Header(typ, flags, id)
}

// write sends one frame, with its length set to the payload's unless it
// is already over MaxFramePayload (a lie the server must refuse from the
// header alone). A failed write means the server closed the connection.
func (c *fzConn) write(h wire.Header, payload []byte) error {
	if h.Type == wire.TypeStart && h.Flags == wire.FlagRequest && h.ClientID == c.peer.ID && h.ChannelID == c.peer.Channel {
		c.mu.Lock()
		if c.sent[h.RequestID] == nil {
			c.sent[h.RequestID] = &fzSent{seq: 1, credit: wire.InitialRequestCredit}
			c.sentOrder = append(c.sentOrder, h.RequestID)
		}
		c.mu.Unlock()
	}
	c.peer.NC.SetWriteDeadline(time.Now().Add(fzWait))
	err := c.peer.Send(h, payload) // Send keeps a length over MaxFramePayload
	if err != nil {
		c.setDead("write: " + err.Error())
	}
	return err
}

func (c *fzConn) setDead(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead == "" {
		c.dead = why
	}
}

func (c *fzConn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead != ""
}

// read records every frame the server sends, until the connection ends.
func (c *fzConn) read() {
	defer close(c.done)
	for {
		h, p, err := c.peer.ReadFrame()
		if err != nil {
			c.setDead("read: " + err.Error())
			return
		}
		c.mu.Lock()
		c.handle(h, p)
		c.mu.Unlock()
	}
}

// handle updates the state for one frame from the server; c.mu is held.
func (c *fzConn) handle(h wire.Header, p []byte) {
	id := h.RequestID
	switch {
	case h.Flags == 0: // a connection-level error: the server closes
		if c.dead == "" {
			c.dead = "connection-level error frame"
		}
	case h.Flags == wire.FlagPing && h.Type == wire.TypeEnd:
		if ch := c.pongs[id]; ch != nil {
			delete(c.pongs, id)
			close(ch)
		}
	case h.Flags == wire.FlagRequest|wire.FlagCredit:
		if s := c.sent[id]; s != nil {
			if n, err := wire.ParseCredit(p); err == nil {
				s.credit += int(n)
			}
		}
	case h.Flags == wire.FlagRequest && h.Type == wire.TypeError:
		c.terminal(id, h)
	case h.Flags == wire.FlagResponse && c.sent[id] != nil: // the response to one of its requests
		s := c.sent[id]
		if s.terminals > 0 {
			c.violations = append(c.violations, fmt.Sprintf("%v after request %x had ended", h, id[:4]))
			return
		}
		switch h.Type {
		case wire.TypeChunk:
			s.respBytes += len(p)
		case wire.TypeEnd, wire.TypeError:
			c.terminal(id, h)
		}
	case h.Flags == wire.FlagResponse|wire.FlagCredit:
		if r := c.held[id]; r != nil {
			if n, err := wire.ParseCredit(p); err == nil {
				r.respCredit += int(n)
			}
		}
	case h.Flags == wire.FlagReceive:
		switch {
		case h.Type == wire.TypeStart && len(p) == 16:
			// An ID comes to a connection again only as a new request
			// (another client may take an ID once it is unknown), and only
			// once the connection itself ended its response to the first:
			// it never answers the server's tombstone pings, so an end of
			// the server's, or its own error|response, leaves the ID in use
			// for the rest of the program.
			if r := c.held[id]; r != nil {
				if !r.respEnded || r.ended > 0 {
					c.violations = append(c.violations, fmt.Sprintf("request %x delivered twice", id[:4]))
					return
				}
			} else {
				c.heldOrder = append(c.heldOrder, id)
			}
			// The poll it answers is no longer waiting (a withdrawn poll
			// may still be answered; the connection keeps the request, as
			// the library does).
			delete(c.polls, socketbus.ID(p))
			c.held[id] = &fzHeld{respCredit: wire.StreamWindow}
		case h.Type == wire.TypeChunk:
			if r := c.held[id]; r != nil {
				r.bytes += len(p)
			}
		case h.Type == wire.TypeError:
			if r := c.held[id]; r != nil {
				r.ended++
				if r.ended > 1 {
					c.violations = append(c.violations, fmt.Sprintf("delivered request %x ended twice at its receiver", id[:4]))
				}
			} else {
				delete(c.polls, id) // a poll refused
			}
		}
	}
}

// terminal counts an end of request id at its sender; c.mu is held.
func (c *fzConn) terminal(id socketbus.ID, h wire.Header) {
	s := c.sent[id]
	if s == nil {
		c.violations = append(c.violations, fmt.Sprintf("%v for request %x, which this connection never started", h, id[:4]))
		return
	}
	s.terminals++
	if s.terminals > 1 {
		c.violations = append(c.violations, fmt.Sprintf("request %x ended %d times; the last: %v", id[:4], s.terminals, h))
	}
}

// sync pings the server and waits for the pong: once it arrives, the
// server has handled every frame written before the ping. A connection the
// server has closed is no error; a server that neither answers nor closes
// within fzWait is.
func (c *fzConn) sync() error {
	id := uuid.New()
	ch := make(chan struct{})
	c.mu.Lock()
	c.pongs[id] = ch
	c.mu.Unlock()
	h := c.header(wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	if c.write(h, nil) != nil {
		return nil
	}
	timer := time.NewTimer(fzWait)
	defer timer.Stop()
	select {
	case <-ch:
	case <-c.done:
	case <-timer.C:
		return fmt.Errorf("connection %d: no pong and no close within %v", c.idx, fzWait)
	}
	return nil
}

// cancelOpen cancels every request the connection has not seen end.
func (c *fzConn) cancelOpen() {
	c.mu.Lock()
	var open []socketbus.ID
	for _, id := range c.sentOrder {
		if c.sent[id].terminals == 0 {
			open = append(open, id)
		}
	}
	c.mu.Unlock()
	for _, id := range open {
		h := c.header(wire.TypeError, wire.FlagRequest, id)
		h.Final = true
		if c.write(h, wire.AppendError(nil, wire.CodeCancelled, "fuzz program over")) != nil {
			return
		}
	}
}

// check reports what the connection saw go wrong; for a connection still
// open, that includes a request that did not end exactly once.
func (c *fzConn) check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		return fmt.Errorf("connection %d: %s", c.idx, strings.Join(c.violations, "; "))
	}
	if c.dead != "" {
		return nil
	}
	for _, id := range c.sentOrder {
		if n := c.sent[id].terminals; n != 1 {
			return fmt.Errorf("connection %d: request %x ended %d times after it was cancelled and the server answered a ping, want once", c.idx, id[:4], n)
		}
	}
	return nil
}

func (c *fzConn) close() {
	c.peer.Close()
	<-c.done
}

// act runs one action of the program and says what it did.
func (c *fzConn) act(action int, p *fzProgram, conns []*fzConn, chA, chB socketbus.ID) string {
	c.mu.Lock()
	sent, held, polls := c.sentOrder, c.heldOrder, c.pollOrder
	c.mu.Unlock()
	pickSent := func() (socketbus.ID, *fzSent) {
		if len(sent) == 0 {
			return socketbus.ID{}, nil
		}
		id := sent[p.pick(len(sent))]
		c.mu.Lock()
		defer c.mu.Unlock()
		return id, c.sent[id]
	}
	pickHeld := func() (socketbus.ID, *fzHeld) {
		if len(held) == 0 {
			return socketbus.ID{}, nil
		}
		id := held[p.pick(len(held))]
		c.mu.Lock()
		defer c.mu.Unlock()
		return id, c.held[id]
	}
	switch action % fzActions {
	case fzStart:
		timeouts := []uint64{0, 1, 30, 10000}
		h := c.header(wire.TypeStart, wire.FlagRequest, uuid.New())
		h.TimeoutMillis = timeouts[p.pick(len(timeouts))]
		c.write(h, nil)
		return fmt.Sprintf("start %x timeout %d", h.RequestID[:4], h.TimeoutMillis)
	case fzChunk:
		id, s := pickSent()
		if s == nil {
			return "chunk: no request"
		}
		c.mu.Lock()
		n := min(int(p.byte())*64, s.credit)
		if n == 0 && s.chunks > 0 || s.bodyEnded {
			c.mu.Unlock()
			return fmt.Sprintf("chunk %x: nothing to send", id[:4])
		}
		h := c.header(wire.TypeChunk, wire.FlagRequest, id)
		h.Sequence = s.seq
		s.seq++
		s.chunks++
		s.credit -= n
		c.mu.Unlock()
		c.write(h, make([]byte, n))
		return fmt.Sprintf("chunk %x seq %d, %d bytes", id[:4], h.Sequence, n)
	case fzEnd:
		id, s := pickSent()
		if s == nil {
			return "end: no request"
		}
		c.mu.Lock()
		if s.chunks == 0 || s.bodyEnded {
			c.mu.Unlock()
			return fmt.Sprintf("end %x: not now", id[:4])
		}
		h := c.header(wire.TypeEnd, wire.FlagRequest, id)
		h.Sequence, h.Final = s.seq, true
		s.seq++
		s.bodyEnded = true
		c.mu.Unlock()
		c.write(h, nil)
		return fmt.Sprintf("end %x seq %d", id[:4], h.Sequence)
	case fzCancel:
		id, s := pickSent()
		if s == nil {
			return "cancel: no request"
		}
		codes := []wire.Code{wire.CodeCancelled, wire.CodeAborted, wire.CodeTimeout}
		code := codes[p.pick(len(codes))]
		h := c.header(wire.TypeError, wire.FlagRequest, id)
		h.Final = true
		c.write(h, wire.AppendError(nil, code, "fuzz"))
		return fmt.Sprintf("cancel %x %v", id[:4], code)
	case fzPoll:
		id := uuid.New()
		c.mu.Lock()
		c.polls[id] = true
		c.pollOrder = append(c.pollOrder, id)
		c.mu.Unlock()
		h := c.header(wire.TypeStart, wire.FlagReceive, id)
		h.Final = true
		c.write(h, nil)
		return fmt.Sprintf("poll %x", id[:4])
	case fzWithdraw:
		if len(polls) == 0 {
			return "withdraw: no poll"
		}
		id := polls[p.pick(len(polls))]
		h := c.header(wire.TypeEnd, wire.FlagReceive, id)
		h.Final = true
		c.write(h, nil)
		return fmt.Sprintf("withdraw %x", id[:4])
	case fzGrantBody:
		id, r := pickHeld()
		if r == nil {
			return "grant body: no request held"
		}
		c.mu.Lock()
		n := min(int(p.byte())*256+1, r.bytes-r.granted)
		r.granted += max(n, 0)
		c.mu.Unlock()
		if n <= 0 {
			return fmt.Sprintf("grant body %x: nothing consumed", id[:4])
		}
		c.write(c.header(wire.TypeChunk, wire.FlagReceive|wire.FlagCredit, id), wire.AppendCredit(nil, uint32(n)))
		return fmt.Sprintf("grant body %x %d", id[:4], n)
	case fzRespStart:
		id, r := pickHeld()
		if r == nil {
			return "response start: no request held"
		}
		c.mu.Lock()
		again := r.respStarted
		r.respStarted, r.respSeq = true, 1
		c.mu.Unlock()
		if again {
			return fmt.Sprintf("response start %x: started already", id[:4])
		}
		c.write(c.header(wire.TypeStart, wire.FlagResponse, id), nil)
		return fmt.Sprintf("response start %x", id[:4])
	case fzRespChunk:
		id, r := pickHeld()
		if r == nil {
			return "response chunk: no request held"
		}
		c.mu.Lock()
		n := min(int(p.byte())*64, r.respCredit)
		if !r.respStarted || r.respEnded || n == 0 && r.respChunks > 0 {
			c.mu.Unlock()
			return fmt.Sprintf("response chunk %x: not now", id[:4])
		}
		h := c.header(wire.TypeChunk, wire.FlagResponse, id)
		h.Sequence = r.respSeq
		r.respSeq++
		r.respChunks++
		r.respCredit -= n
		c.mu.Unlock()
		c.write(h, make([]byte, n))
		return fmt.Sprintf("response chunk %x seq %d, %d bytes", id[:4], h.Sequence, n)
	case fzRespEnd:
		id, r := pickHeld()
		if r == nil {
			return "response end: no request held"
		}
		c.mu.Lock()
		if !r.respStarted || r.respEnded || r.respChunks == 0 {
			c.mu.Unlock()
			return fmt.Sprintf("response end %x: not now", id[:4])
		}
		h := c.header(wire.TypeEnd, wire.FlagResponse, id)
		h.Sequence, h.Final = r.respSeq, true
		r.respEnded = true
		c.mu.Unlock()
		c.write(h, nil)
		return fmt.Sprintf("response end %x", id[:4])
	case fzFail:
		id, r := pickHeld()
		if r == nil {
			return "fail: no request held"
		}
		h := c.header(wire.TypeError, wire.FlagResponse, id)
		h.Final = true
		c.mu.Lock()
		r.failed = true
		c.mu.Unlock()
		c.write(h, wire.AppendError(nil, wire.CodeRemote, "fuzz says no"))
		return fmt.Sprintf("fail %x", id[:4])
	case fzGrantResp:
		// Credit for the response to one of its own requests: honest when
		// it gives back bytes received, but the amount is the fuzzer's,
		// and the response may not have started or have a receiver.
		id, s := pickSent()
		if s == nil {
			return "grant response: no request"
		}
		n := uint32(p.byte())*512 + 1
		c.write(c.header(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit, id), wire.AppendCredit(nil, n))
		return fmt.Sprintf("grant response %x %d", id[:4], n)
	case fzPing:
		n := p.pick(9)
		h := c.header(wire.TypeStart, wire.FlagPing, uuid.New())
		h.Final = true
		c.write(h, make([]byte, n))
		return fmt.Sprintf("ping with %d bytes", n)
	}
	return c.raw(p, conns, chA, chB)
}

// raw writes one frame with fields the program chooses, IDs among them
// taken from this connection's states or another's.
func (c *fzConn) raw(p *fzProgram, conns []*fzConn, chA, chB socketbus.ID) string {
	types := []wire.FrameType{wire.TypeStart, wire.TypeChunk, wire.TypeEnd, wire.TypeError, 0, 9}
	flags := []wire.Flags{wire.FlagRequest, wire.FlagReceive, wire.FlagResponse, wire.FlagJoin, wire.FlagPing,
		wire.FlagRequest | wire.FlagCredit, wire.FlagReceive | wire.FlagCredit, wire.FlagResponse | wire.FlagCredit, 0,
		wire.FlagRequest | wire.FlagResponse, wire.FlagCredit, 0x0100}
	h := c.header(types[p.pick(len(types))], flags[p.pick(len(flags))], uuid.New())

	// The ID: one of some connection's requests, held requests or polls.
	other := conns[p.pick(len(conns))]
	other.mu.Lock()
	var ids []socketbus.ID
	switch p.pick(4) {
	case 0:
		ids = other.sentOrder
	case 1:
		ids = other.heldOrder
	case 2:
		ids = other.pollOrder
	}
	if len(ids) > 0 {
		h.RequestID = ids[p.pick(len(ids))]
	}
	other.mu.Unlock()

	seqs := []uint32{0, 1, 2, 3, wire.MaxSequence}
	h.Sequence = seqs[p.pick(len(seqs))]
	bits := p.byte()
	h.Final = bits&1 != 0
	if bits&2 != 0 {
		h.ClientID = conns[p.pick(len(conns))].peer.ID
	}
	if bits&4 != 0 {
		h.ChannelID = chA
		if c.peer.Channel == chA {
			h.ChannelID = chB
		}
	}
	if bits&8 != 0 {
		h.TimeoutMillis = uint64(p.byte())
	}
	var payload []byte
	switch p.pick(6) {
	case 1: // a credit grant, 0 included
		payload = binary.BigEndian.AppendUint32(nil, uint32(p.byte())<<uint(p.pick(25)))
	case 2: // an error, with any code
		payload = wire.AppendError(nil, wire.Code(p.pick(16)), "raw")
	case 3:
		payload = make([]byte, int(p.byte())*8)
	case 4: // the length alone, over the maximum
		h.Length = wire.MaxFramePayload + 1
	case 5:
		payload = make([]byte, p.pick(17))
	}
	c.write(h, payload)
	return fmt.Sprintf("raw %v", h)
}

// fzCheckOpenOnce checks that no request ID is open at two connections at
// once: handed to each, and neither has seen it end (an error frame) or
// ended it (its response's end, or error|response). Every connection has
// read what the server sent it before the step's pongs, so a request that
// ended before another started under its ID is seen ended.
func fzCheckOpenOnce(conns []*fzConn) error {
	openAt := map[socketbus.ID]int{}
	for _, c := range conns {
		c.mu.Lock()
		if c.dead == "" {
			for id, r := range c.held {
				if r.ended > 0 || r.respEnded || r.failed {
					continue
				}
				if other, dup := openAt[id]; dup {
					c.mu.Unlock()
					return fmt.Errorf("request %x is open at connections %d and %d at once", id[:4], other, c.idx)
				}
				openAt[id] = c.idx
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// fzCheckStats checks what must hold of a server's Stats at any time.
func fzCheckStats(st server.Stats, cfg server.Config) error {
	if st.InFlight < 0 {
		return fmt.Errorf("Stats: InFlight %d, want >= 0", st.InFlight)
	}
	maxQueueBytes := cfg.MaxChannelQueueBytes
	if maxQueueBytes <= 0 {
		maxQueueBytes = server.DefaultMaxChannelQueueBytes
	}
	for _, c := range st.Channels {
		switch {
		case c.Clients < 0 || c.ReceiversWaiting < 0 || c.Queued < 0 || c.QueuedBytes < 0:
			return fmt.Errorf("Stats: channel %x: a negative count: %+v", c.ID[:4], c)
		case c.InFlight < 0:
			return fmt.Errorf("Stats: channel %x: %d requests queued but %d in its table (InFlight %d, want >= 0)",
				c.ID[:4], c.Queued, c.Queued+c.InFlight, c.InFlight)
		case c.QueuedBytes > maxQueueBytes+int64(c.Queued)*wire.InitialRequestCredit:
			return fmt.Errorf("Stats: channel %x: %d bytes queued for %d requests, over the bound of %d + 16 KiB each",
				c.ID[:4], c.QueuedBytes, c.Queued, maxQueueBytes)
		case c.Queued > 0 && c.Clients == 0:
			return fmt.Errorf("Stats: channel %x: %d requests queued with no client", c.ID[:4], c.Queued)
		}
	}
	return nil
}

// fzSettle waits until the server has forgotten the closed connections:
// as many connections as before the input, neither of its channels, and
// no request in flight. It checks after every frame the server handles and
// every connection it is done with (testpeer.Watch), never by polling.
func fzSettle(t testing.TB, srv *server.Server, baseConns int, chA, chB socketbus.ID) error {
	var err error
	testpeer.WatchServer(t, srv).Until(fzWait, func() bool {
		st := srv.Stats()
		err = nil
		switch {
		case st.Connections > baseConns:
			err = fmt.Errorf("%d connections open, want %d", st.Connections, baseConns)
		case st.InFlight != 0:
			err = fmt.Errorf("%d requests in flight, want 0", st.InFlight)
		}
		for _, c := range st.Channels {
			if c.ID == chA || c.ID == chB {
				err = errors.Join(err, fmt.Errorf("channel %x still there: %+v", c.ID[:4], c))
			}
		}
		return err == nil
	})
	return err
}
