package socketbus

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// gatherCall is the reader's side of a gather or publish in flight: the
// members the server announced, each member's reply as it streams in, and
// the outcomes not yet handed to the caller (docs/PROTOCOL.md section 24).
type gatherCall struct {
	publish bool
	wake    chan struct{} // signalled when out, ended or err change

	mu      sync.Mutex
	members int                   // announced so far
	open    map[ID]*replyAssembly // announced members without an outcome
	dropped map[ID]struct{}       // members whose reply went over the limit: their late frames are ignored
	out     []Reply               // outcomes the caller has not taken
	ended   bool                  // the server's end frame came
	took    int                   // a publish's count, from the end frame
	err     error                 // the gather failed as a whole
}

// replyAssembly is one member's reply while its stream comes in.
type replyAssembly struct {
	started   bool
	header    Header
	body      []byte
	ungranted int // bytes received since the last credit grant
}

func newGatherCall(publish bool) *gatherCall {
	return &gatherCall{publish: publish, wake: make(chan struct{}, 1), open: make(map[ID]*replyAssembly)}
}

func (g *gatherCall) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// take returns the outcomes that came since the last take, and whether
// the gather is over.
func (g *gatherCall) take() (out []Reply, ended bool, took int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out, g.out = g.out, nil
	return out, g.ended, g.took, g.err
}

// fail ends the gather as a whole with err, unless it has ended.
func (g *gatherCall) fail(err error) {
	g.mu.Lock()
	if !g.ended && g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
	g.signal()
}

// timeOutOpen gives every member without an outcome one that matches
// ErrTimeout, and ends the gather: its deadline passed and the server's
// word did not come within the grace.
func (g *gatherCall) timeOutOpen() {
	g.mu.Lock()
	for id := range g.open {
		g.out = append(g.out, Reply{From: id, Err: fmt.Errorf("socketbus: gather: %w", ErrTimeout)})
	}
	clear(g.open)
	g.ended = true
	g.mu.Unlock()
	g.signal()
}

// handleGatherFrame handles the server's frames about one of this
// client's gathers: the announcement of members, the end, and each
// member's reply stream.
func (c *Client) handleGatherFrame(cc *clientConn, f frame.Frame) error {
	defer f.Release()
	h := &f.Header
	call := c.sendCall(cc, h.RequestID)
	if call == nil {
		return nil // the gather has returned; this was in flight
	}
	g := call.gather
	if g == nil {
		return wire.Errorf(wire.CodeProtocol, "gather frame for request %s, which is not a gather", ID(h.RequestID))
	}
	if h.Flags.Has(wire.FlagResponse) {
		return c.handleReplyFrame(cc, call, &f)
	}
	call.delivery.acked.Store(true)
	switch h.Type {
	case wire.TypeStart:
		ids, err := parseAnnouncement(f.Payload)
		if err != nil {
			return err
		}
		g.mu.Lock()
		for _, id := range ids {
			if _, dup := g.open[id]; dup {
				g.mu.Unlock()
				return wire.Errorf(wire.CodeProtocol, "member %s announced twice in gather %s", id, ID(h.RequestID))
			}
			g.open[id] = &replyAssembly{}
		}
		g.members += len(ids)
		g.mu.Unlock()
	case wire.TypeEnd:
		if len(f.Payload) != 4 {
			return wire.Errorf(wire.CodeProtocol, "a gather's end frame carries a 4-byte count, not %d bytes", len(f.Payload))
		}
		g.mu.Lock()
		if len(g.open) > 0 && !g.publish {
			n := len(g.open)
			g.mu.Unlock()
			return wire.Errorf(wire.CodeProtocol, "gather %s ended with %d members still to reply", ID(h.RequestID), n)
		}
		g.took = int(binary.BigEndian.Uint32(f.Payload))
		g.ended = true
		g.mu.Unlock()
		g.signal()
	}
	return nil
}

// parseAnnouncement reads a gather's announcement: a count, then that
// many client IDs.
func parseAnnouncement(p []byte) ([]ID, error) {
	if len(p) < 4 {
		return nil, wire.Errorf(wire.CodeProtocol, "a gather's announcement of %d bytes; it starts with a 4-byte count", len(p))
	}
	n := int(binary.BigEndian.Uint32(p))
	if len(p) != 4+16*n {
		return nil, wire.Errorf(wire.CodeProtocol, "a gather's announcement of %d members carries %d bytes, not %d", n, len(p), 4+16*n)
	}
	ids := make([]ID, n)
	for i := range ids {
		copy(ids[i][:], p[4+16*i:])
	}
	return ids, nil
}

// handleReplyFrame handles one frame of a member's reply to a gather. The
// client ID field names the member.
func (c *Client) handleReplyFrame(cc *clientConn, call *sendCall, f *frame.Frame) error {
	h := &f.Header
	g := call.gather
	member := ID(h.ClientID)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended {
		return nil
	}
	ra := g.open[member]
	if ra == nil {
		if _, gone := g.dropped[member]; gone {
			return nil // the rest of a reply that went over the limit
		}
		return wire.Errorf(wire.CodeProtocol, "a reply to gather %s from %s, which is not one of its members or has replied", ID(h.RequestID), member)
	}
	switch h.Type {
	case wire.TypeError:
		e, err := c.parseError(f)
		if err != nil {
			return err
		}
		r := Reply{From: member, Err: errorFromWire(e)}
		if len(e.Headers) > 0 {
			hdr, _, err := decodeHeaders(e.Headers)
			if err != nil {
				return err
			}
			r.Header = hdr
		}
		g.doneLocked(member, r)
		return nil
	case wire.TypeStart:
		if ra.started || h.Sequence != 0 {
			return wire.Errorf(wire.CodeProtocol, "a second start of %s's reply to gather %s", member, ID(h.RequestID))
		}
		hdr, n, err := decodeHeaders(f.Payload)
		if err != nil {
			return err
		}
		ra.started, ra.header = true, hdr
		if h.Final {
			ra.body = append([]byte(nil), f.Payload[n:]...)
			g.doneLocked(member, ra.reply(member))
		} else if len(f.Payload) != n {
			return wire.Errorf(wire.CodeProtocol, "a reply start frame with %d bytes after its header block", len(f.Payload)-n)
		}
		return nil
	}
	if !ra.started {
		return wire.Errorf(wire.CodeProtocol, "%s frame of %s's reply to gather %s before its start", h.Type, member, ID(h.RequestID))
	}
	if h.Type == wire.TypeEnd {
		g.doneLocked(member, ra.reply(member))
		return nil
	}
	n := len(f.Payload)
	if int64(len(ra.body))+int64(n) > c.callLimit {
		// Past what a Call would take; the member's part fails here, and
		// no more credit goes to it (the server ends it at the deadline).
		g.doneLocked(member, Reply{From: member, Err: fmt.Errorf("socketbus: gather: a reply over %d bytes: %w", c.callLimit, ErrTooLarge)})
		if g.dropped == nil {
			g.dropped = make(map[ID]struct{})
		}
		g.dropped[member] = struct{}{}
		return nil
	}
	ra.body = append(ra.body, f.Payload...)
	ra.ungranted += n
	if ra.ungranted >= wire.StreamWindow/2 {
		grant := c.replyCreditFrame(call.id, member, ra.ungranted)
		ra.ungranted = 0
		_ = c.sendOn(cc, grant)
	}
	return nil
}

// reply is the finished reply of a member.
func (ra *replyAssembly) reply(member ID) Reply {
	hdr := ra.header
	if hdr == nil {
		hdr = Header{}
	}
	body := ra.body
	if body == nil {
		body = []byte{}
	}
	return Reply{From: member, Header: hdr, Body: body}
}

// doneLocked records a member's outcome.
func (g *gatherCall) doneLocked(member ID, r Reply) {
	delete(g.open, member)
	g.out = append(g.out, r)
	g.signal()
}

// replyCreditFrame grants n bytes of credit for member's reply to gather
// id: chunk|response|credit|all, the grant then the member's ID.
func (c *Client) replyCreditFrame(id, member ID, n int) frame.Frame {
	p := frame.GetBuffer(wire.CreditSize + 16)
	binary.BigEndian.PutUint32(p, uint32(n))
	copy(p[wire.CreditSize:], member[:])
	return frame.Frame{Header: c.header(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit|wire.FlagAll, id), Payload: p, Pooled: true}
}
