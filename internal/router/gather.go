package router

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Gathers and publishes (protocol v3, docs/PROTOCOL.md section 24). A
// gather is one request to every other member of the channel present when
// it is accepted; a publish is a gather whose members' answers are
// discarded. The router keeps it as a parent request, the one its sender
// streams (in the sender's table under the sender's request ID), and one
// child request per member, an ordinary request targeted at that member:
// it waits on the member's own list (Member.targeted) for one of the
// member's polls or units of push credit, is delivered, streamed, taken,
// returned, answered, failed or timed out as any request is, and its
// outcome goes to the sender as that member's reply (toSenderLocked).
//
// The parent's body fans out: every frame the sender streams is copied
// into each child still reading it, and the sender is granted only what
// every such child has room for (fanGrantLocked), so the server holds at
// most one window per member, charged to the sender's account as any
// request body is. When the last child has its outcome the sender gets the
// gather's end frame, and the parent ends.

// gather is the fan-out of one gather or publish.
type gather struct {
	parent   *request
	publish  bool
	children map[wire.ID]*request // by member client ID; ended ones stay
	live     int                  // children without an outcome
	took     int                  // members that took a published request

	// Parts for other nodes (legs, docs/PROTOCOL.md section 24.5): one
	// child per remote receiver, with the members its node announced.
	legs  map[*request]*leg
	legOf map[wire.ID]*request // a member on another node -> its leg
}

// leg is what a gather's part for another node knows of that node's
// members.
type leg struct {
	open map[wire.ID]struct{} // announced, without an outcome yet
	took int                  // the node's count, for a publish
}

// isLeg reports whether req is a gather's part for another node.
func (req *request) isLeg() bool { return req.gather != nil && req.target.remote != 0 }

// GatherMembers is how many members a gather may reach when
// Config.MaxGatherMembers is 0.
const GatherMembers = 1024

// maxGatherMembers is the configured bound on a gather's members.
func (c *Config) maxGatherMembers() int {
	if c.MaxGatherMembers > 0 {
		return c.MaxGatherMembers
	}
	return GatherMembers
}

// gatherMembersLocked lists the members a gather from m reaches: every
// other local member joined to the channel that has not yielded its
// client ID to another node's join.
func (ch *channel) gatherMembersLocked(m *Member) []*Member {
	var out []*Member
	for _, o := range ch.members {
		if o != m && o.remote == 0 && !o.gone && o.busState != busYielded {
			out = append(out, o)
		}
	}
	return out
}

// gatherNodesLocked lists the remote receivers a gather from m sends a
// part to: one per other node with members on the channel. A gather that
// came from another node (m is a remote sender) goes no further.
func (ch *channel) gatherNodesLocked(m *Member) []*Member {
	if m.remote != 0 {
		return nil
	}
	var out []*Member
	for _, o := range ch.members {
		if o.remote == RemoteReceiver && !o.gone && !o.draining {
			out = append(out, o)
		}
	}
	return out
}

// startGatherLocked opens a gather or publish from m (h.Flags has
// FlagAll), after startRequestLocked's checks common to every request.
// hlen is the start frame's header block; whole says the body is the rest
// of the payload.
func (m *Member) startGatherLocked(f *frame.Frame, s startFrame, from wire.ID) error {
	h := &f.Header
	ch := m.ch
	r := m.r
	members := ch.gatherMembersLocked(m)
	if limit := r.cfg.maxGatherMembers(); len(members) > limit {
		return m.refuseLocked(h.RequestID, wire.CodeLimit, "the channel has "+itoa(int64(len(members)))+" other members; a gather reaches at most "+itoa(int64(limit)))
	}
	nodes := ch.gatherNodesLocked(m)
	if len(members)+len(nodes) == 0 {
		return m.refuseLocked(h.RequestID, wire.CodeNoPeers, "no other client is joined to this channel")
	}
	local := len(members)
	members = append(members, nodes...)
	parent := m.newRequestLocked(h.RequestID, from, f.Payload[:s.hlen])
	if parent == nil {
		return m.refuseLocked(h.RequestID, wire.CodeLimit, errMemoryShort)
	}
	g := &gather{parent: parent, publish: h.Flags.Has(wire.FlagPublish), children: make(map[wire.ID]*request, len(members))}
	parent.fan = g // queued until it ends with its last child: it is never delivered
	children := make([]*request, 0, len(members))
	for _, o := range members {
		child := &request{id: ch.newRequestIDLocked(), ch: ch, sender: m, from: from, gather: g, target: o, headers: parent.headers}
		child.to(reqQueued)
		child.body.upOutstanding = wire.InitialRequestCredit
		if !ch.commitLocked(child, false, 0) {
			for _, c := range children {
				ch.releaseChargesLocked(c)
			}
			ch.releaseChargesLocked(parent)
			ch.releaseRequestHeadersLocked(parent)
			return m.refuseLocked(h.RequestID, wire.CodeLimit, "the server's memory budget is short for a gather to "+itoa(int64(len(members)))+" members; try again later")
		}
		children = append(children, child)
	}

	ch.openLocked(parent, r.cfg.timeoutOf(h.TimeoutMillis)) // its timer ends every child's part
	if g.publish {
		r.publishes.Add(1)
	} else {
		r.gathers.Add(1)
	}
	for _, child := range children {
		child.started, child.deadline = parent.started, parent.deadline
		child.body.nextSeq, child.body.downSeq = 1, 1
		ch.requests[child.id] = child
		g.children[child.target.id] = child
		r.inFlight.Add(1)
	}
	g.live = len(children)
	if len(nodes) > 0 {
		g.legs = make(map[*request]*leg, len(nodes))
		g.legOf = make(map[wire.ID]*request)
		for _, c := range children[local:] {
			g.legs[c] = &leg{open: make(map[wire.ID]struct{})}
		}
	}

	ch.announceLocked(parent, children[:local])
	if s.whole {
		// The body is copied to every child before any is delivered, so
		// that a small one goes whole.
		ch.keepWholeLocked(parent, f, s.hlen)
		ch.fanOutLocked(parent)
	}
	ch.targetAllLocked(children)
	return nil
}

// announcePerFrame is how many members one announcement names: 4 bytes
// of count and 16 per member fit one frame.
const announcePerFrame = (wire.MaxFramePayload - 4) / 16

// announceLocked tells the gather's sender which members it reaches, in
// as many announcements as their IDs need.
func (ch *channel) announceLocked(parent *request, children []*request) {
	flags := wire.FlagRequest | wire.FlagAll
	if parent.fan.publish {
		flags |= wire.FlagPublish
	}
	m := parent.sender
	if len(children) == 0 && len(parent.fan.legs) == 0 {
		children = nil
	}
	for len(children) > 0 {
		part := children[:min(len(children), announcePerFrame)]
		children = children[len(part):]
		p := frame.GetBuffer(4 + 16*len(part))
		binary.BigEndian.PutUint32(p, uint32(len(part)))
		for i, c := range part {
			copy(p[4+16*i:], c.target.id[:])
		}
		ann := header(ch, m, wire.TypeStart, flags, parent.id)
		ann.Final = true
		ch.send(m, frame.Frame{Header: ann, Payload: p, Pooled: true})
	}
}

// countPayload encodes n as a gather's 4-byte count.
func countPayload(n int) []byte {
	p := frame.GetBuffer(4)
	binary.BigEndian.PutUint32(p, uint32(n))
	return p
}

// newRequestIDLocked draws a request ID for a gather's child that no live
// request of the channel has. math/rand/v2's generator is seeded from the
// operating system: members cannot guess the IDs of children yet to come.
func (ch *channel) newRequestIDLocked() wire.ID {
	for {
		var id wire.ID
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
		if _, live := ch.requests[id]; !live && id != (wire.ID{}) {
			return id
		}
	}
}

// targetAllLocked hands each child to a waiting poll or unit of push
// credit of its member, in one walk of the channel's receivers, and puts
// the others on their members' targeted lists.
func (ch *channel) targetAllLocked(children []*request) {
	want := make(map[*Member]*request, len(children))
	for _, c := range children {
		switch {
		case c.state == reqEnded:
		case c.isLeg():
			ch.assignLocked(c, c.target, wire.ID{}) // no claim: it is that node's (24.5)
		default:
			want[c.target] = c
		}
	}
	for p := ch.polls.head; p != nil && len(want) > 0; {
		next := p.next
		if c := want[p.m]; c != nil {
			delete(want, p.m)
			ch.placeLocked(c, p)
		}
		p = next
	}
	for m, c := range want {
		m.targeted.push(c)
	}
}

// targetLocked hands a returned child back to its member: to one of the
// member's waiting receivers, or to its targeted list, at the head.
func (ch *channel) targetLocked(req *request) {
	m := req.target
	for p := ch.polls.head; p != nil; p = p.next {
		if p.m == m {
			ch.placeLocked(req, p)
			return
		}
	}
	m.targeted.pushFront(req)
}

// unqueueLocked takes req off the list it waits on, if any: its member's
// targeted list for a gather's child, the channel's queue otherwise.
func (ch *channel) unqueueLocked(req *request) {
	if req.target != nil {
		req.target.targeted.remove(req)
		return
	}
	ch.queue.remove(req)
}

// fanOutLocked copies the frames the gather's sender has streamed into
// every child still reading the body, then pumps each child on and grants
// the sender what all of them have room for.
//
// Every child has its copies before any is pumped: a pumped child may ask
// for a grant (grantHoldingLocked), and a grant computed while a frame
// had been copied into some children and not yet the others once counted
// it against some only, so the sender ran past the slowest child's
// window.
func (ch *channel) fanOutLocked(parent *request) {
	g := parent.fan
	rl := &parent.body
	for i := range rl.pending {
		pf := &rl.pending[i]
		for _, c := range g.children {
			if c.state == reqEnded || c.body.ended {
				continue
			}
			ch.feedChildLocked(c, pf)
		}
		pf.Release()
	}
	clear(rl.pending)
	rl.pending = rl.pending[:0]
	rl.pendingBytes = 0
	for _, c := range g.children {
		if c.state != reqEnded {
			ch.pumpLocked(c, false)
		}
	}
	ch.shrinkLocked(parent, false)
	ch.fanGrantLocked(g)
}

// feedChildLocked adds a copy of one body frame of the gather's sender to
// child c's body, as streamFrameLocked adds a sender's frame to an
// ordinary request's; fanOutLocked then pumps it on.
func (ch *channel) feedChildLocked(c *request, pf *frame.Frame) {
	rl := &c.body
	n := len(pf.Payload)
	cf := frame.Frame{Header: pf.Header}
	cf.Header.RequestID = c.id
	if n > 0 {
		cf.Payload = frame.GetBuffer(n)
		copy(cf.Payload, pf.Payload)
		cf.Pooled = true
	}
	rl.upOutstanding -= n // never below 0: the sender was granted no more than any child
	rl.bytes += int64(n)
	if pf.Header.Type == wire.TypeEnd {
		rl.ended = true
	} else {
		rl.chunks++
	}
	rl.nextSeq++
	rl.pendingBytes += n
	rl.keepLocked(&cf)
	cf.Release() // what keepLocked copied rather than kept
}

// fanGrantLocked grants the gather's sender the credit every child still
// reading the body has granted: the smallest of their outstanding credits,
// less what the sender holds. A sender that still holds credit is granted
// only in steps of its initial credit or more.
//
// The sender's outstanding credit never exceeds a reading child's, so no
// child is fed more than it granted: both fall by each frame, the sender's
// when it arrives and the child's when it is copied in, and a grant is
// computed only once every child has its copy (fanOutLocked).
func (ch *channel) fanGrantLocked(g *gather) {
	p := g.parent
	rl := &p.body
	if p.state == reqEnded || rl.ended {
		return
	}
	allow, reading := 0, false
	for _, c := range g.children {
		if c.state == reqEnded || c.body.ended {
			continue
		}
		if !reading || c.body.upOutstanding < allow {
			allow, reading = c.body.upOutstanding, true
		}
	}
	if !reading {
		allow = ch.r.cfg.Window // nobody reads it any more: the rest is dropped
	}
	n := allow - rl.upOutstanding
	if n <= 0 || (rl.upOutstanding > 0 && n < wire.InitialRequestCredit) {
		return
	}
	rl.upOutstanding += n
	rl.granted = true
	ch.send(p.sender, creditFrame(ch, p.sender, p.id, wire.FlagRequest, n))
}

// toSenderLocked sends f, a frame of req's response or its end, to req's
// sender. For a gather's child it becomes that member's reply: the
// gather's request ID, the member's client ID and FlagAll. A publish's
// members' answers are dropped.
func (ch *channel) toSenderLocked(req *request, f frame.Frame) {
	s := req.sender
	g := req.gather
	if s.gone || (g != nil && g.publish) {
		f.Release()
		return
	}
	if g != nil {
		f.Header.RequestID = g.parent.id
		f.Header.ClientID = req.target.id
		f.Header.Flags = f.Header.Flags&wire.FlagCredit | wire.FlagResponse | wire.FlagAll
	}
	ch.send(s, f)
}

// gatherChildEndedLocked counts a child's outcome, and ends the gather
// once every child has one.
func (ch *channel) gatherChildEndedLocked(c *request, outcome Outcome) {
	g := c.gather
	if l := g.legs[c]; l != nil {
		g.took += l.took // a leg is a node, not a member: its members count there
	} else {
		ch.r.gatherReplies[outcome].Add(1)
		if g.publish && outcome == OutcomeCompleted {
			g.took++
		}
	}
	g.live--
	if g.live > 0 {
		ch.fanGrantLocked(g) // the child may have been the slowest reader
		return
	}
	p := g.parent
	if p.state == reqEnded {
		return
	}
	flags := wire.FlagRequest | wire.FlagAll
	if g.publish {
		flags |= wire.FlagPublish
	}
	if s := p.sender; !s.gone {
		end := header(ch, s, wire.TypeEnd, flags, p.id)
		end.Final = true
		ch.send(s, frame.Frame{Header: end, Payload: countPayload(g.took), Pooled: true})
	}
	ch.finishLocked(p, OutcomeCompleted)
}

// failGatherLocked ends every child of a gather that has no outcome yet
// with code (the sender cancelled, its deadline passed, it left): each
// member hears of it as it would of an ordinary request, and the sender
// gets each member's reply, then the gather's end.
func (ch *channel) failGatherLocked(g *gather, code wire.Code, msg string) {
	for _, c := range g.children {
		if c.state != reqEnded {
			ch.failLocked(c, code, msg)
		}
	}
}

// publishTookLocked ends a published request's child once its member has
// taken it whole: delivered by a poll, or pushed and taken, with the
// body's end forwarded; or answered, which a member does only with the
// request in hand. The member's answer, if any, is dropped.
func (ch *channel) publishTookLocked(req *request, answered bool) {
	if req.state == reqEnded || req.gather == nil || !req.gather.publish || req.isLeg() {
		return // a leg ends with its node's end
	}
	if answered || (req.state == reqDelivered && req.body.endForwarded) {
		ch.finishLocked(req, OutcomeCompleted)
	}
}

// handleReplyCreditLocked applies a gather's sender's credit for one
// member's reply: chunk|response|credit|all, a 4-byte grant then the
// member's client ID.
func (m *Member) handleReplyCreditLocked(h *wire.Header, payload []byte) error {
	if h.Type != wire.TypeChunk {
		return protocolErrorf("a credit grant is a chunk frame, not %s", h.Type)
	}
	if len(payload) != wire.CreditSize+len(wire.ID{}) {
		return protocolErrorf("a reply credit grant carries %d bytes: a grant and a member's client ID", wire.CreditSize+len(wire.ID{}))
	}
	n, err := wire.ParseCredit(payload[:wire.CreditSize])
	if err != nil {
		return err
	}
	var member wire.ID
	copy(member[:], payload[wire.CreditSize:])
	parent := m.sent[h.RequestID]
	if parent == nil || parent.fan == nil {
		return nil // the gather ended while the grant was in flight
	}
	child := parent.fan.children[member]
	if child == nil {
		if lg := parent.fan.legOf[member]; lg != nil {
			ch := m.ch
			if _, open := parent.fan.legs[lg].open[member]; open && lg.state != reqEnded {
				p := frame.GetBuffer(len(payload))
				copy(p, payload)
				ch.send(lg.target, frame.Frame{Header: header(ch, lg.target, wire.TypeChunk, wire.FlagResponse|wire.FlagCredit|wire.FlagAll, lg.id), Payload: p, Pooled: true})
			}
			return nil
		}
		return protocolErrorf("reply credit for client %x, which is not a member of gather %x", member, h.RequestID)
	}
	if child.state == reqEnded {
		return nil
	}
	return m.creditLocked(child, n, true)
}

// legFrameLocked handles what another node sent back for a gather's part
// there (lg, held by remote receiver m): its announcement of its members,
// a member's reply (member names it), or its end. The announcement and
// the replies go on to the gather's sender under the gather's ID.
func (m *Member) legFrameLocked(lg *request, f *frame.Frame, member wire.ID) error {
	ch := m.ch
	g := lg.gather
	l := g.legs[lg]
	s := g.parent.sender
	h := &f.Header
	switch {
	case h.Flags.Has(wire.FlagRequest) && h.Type == wire.TypeStart:
		if len(f.Payload) < 4 || len(f.Payload) != 4+16*int(binary.BigEndian.Uint32(f.Payload)) {
			return protocolErrorf("a gather's announcement of %d bytes", len(f.Payload))
		}
		if n := len(g.legOf) + len(f.Payload)/16; n > ch.r.cfg.maxGatherMembers()*len(g.legs) {
			// Every node bounds its own members by its MaxGatherMembers;
			// the bus's nodes are configured alike.
			return protocolErrorf("the other nodes announced %d members for gather %x", n, g.parent.id)
		}
		for p := f.Payload[4:]; len(p) > 0; p = p[16:] {
			id := wire.ID(p[:16])
			if _, dup := g.children[id]; dup || g.legOf[id] != nil {
				return protocolErrorf("member %x announced twice in gather %x", id, g.parent.id)
			}
			l.open[id] = struct{}{}
			g.legOf[id] = lg
		}
	case h.Flags.Has(wire.FlagRequest) && h.Type == wire.TypeEnd:
		if len(f.Payload) != 4 {
			return protocolErrorf("a gather's end of %d bytes", len(f.Payload))
		}
		if len(l.open) > 0 && !g.publish { // a publish's members send no replies
			return protocolErrorf("a gather's part ended with %d members still to reply", len(l.open))
		}
		clear(l.open)
		l.took = int(binary.BigEndian.Uint32(f.Payload))
		ch.finishLocked(lg, OutcomeCompleted)
		return nil
	case h.Flags.Has(wire.FlagResponse):
		if _, open := l.open[member]; !open {
			return nil // its outcome is known: a late frame
		}
		if h.Type == wire.TypeEnd || h.Type == wire.TypeError || (h.Type == wire.TypeStart && h.Final) {
			delete(l.open, member)
		}
		h.ClientID = member
	default:
		return protocolErrorf("a %s frame with flags %s for a gather's part", h.Type, h.Flags)
	}
	if s.gone {
		return nil
	}
	reply := h.Flags.Has(wire.FlagResponse)
	out := take(f)
	out.Header.RequestID, out.Header.Version = g.parent.id, s.version
	if !reply {
		out.Header.ClientID = s.id
	}
	out.Payer = m.acct // bounded by the credit the sender grants
	ch.send(s, out)
	return nil
}

// failLegLocked ends a gather's part for another node that ended before
// that node's own end came back (the node died or left, the link was
// reset, the deadline passed, the sender cancelled): every member it
// announced that has no outcome yet gets one, with code.
func (ch *channel) failLegLocked(lg *request, code wire.Code, msg string) {
	g := lg.gather
	s := g.parent.sender
	for id := range g.legs[lg].open {
		ch.r.gatherReplies[outcomeOf(code)].Add(1)
		if s.gone || g.publish {
			continue
		}
		f := ch.errorFrameTo(s, g.parent, wire.FlagResponse|wire.FlagAll, code, msg)
		f.Header.ClientID = id
		ch.send(s, f)
	}
	clear(g.legs[lg].open)
}
