package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/internal/busapi"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// Routing across nodes (docs/PROTOCOL.md section 21). A node tells every
// other node, per channel, how many members and waiting receivers it has
// (state messages). For each other node that has members on a channel,
// the router has a remote receiver standing for them; for each other node
// that offers it requests, a remote sender starting them (internal/router's
// remote.go). The two are joined by a link: the ordered, numbered messages
// from one node to another on one NATS subject. Everything a node receives
// is handled on one goroutine, in order.

// joinAckTimeout bounds how long a join waits for the other nodes to
// acknowledge that they have seen it: a node that does not answer in time
// is dead or cut off, and is dropped within three heartbeats anyway.
const joinAckTimeout = 2 * time.Second

// announceInterval is the shortest time between two state messages for
// changes to waiting receivers: they coalesce. Changes to members (a join)
// are sent at once by the join itself.
const announceInterval = time.Millisecond

// peerNode is another node, as this one sees it: the link's two sequence
// numbers and the remote members standing for it. outSeq belongs to the
// outbox's goroutine; the rest is guarded by Cluster.mu.
type peerNode struct {
	name        string
	subject     string // where messages to it go
	incarnation string
	heard       time.Time
	since       time.Time // when it was first heard
	acked       bool      // it has acknowledged a state of ours (liveness.go)
	fullToken   uint64    // the token of the last full state sent to it
	// fullSent is when that full state was sent, zero once it is
	// acknowledged, and fullRepeats how many times it went again
	// unanswered: one not acknowledged within fullStateRetry is sent
	// again (tick).
	fullSent    time.Time
	fullRepeats int
	// answersClaims: its acks say it answers claims on client IDs
	// (clientids.go); a node that does not is not waited for.
	answersClaims bool

	outSeq    uint64 // the last sequence number sent (outbox)
	inSeq     uint64 // the next sequence number expected; 0 before the first
	resetting uint64 // the nonce of the reset sent and not yet answered
	// Direct connections (direct.go): directAddr, dialing and markedID
	// are guarded by Cluster.mu; outDirect belongs to the outbox.
	directAddr string
	dialing    bool
	dialAfter  time.Time // no dial before (a failed one: direct_backoff.go)
	// dialFailures counts the failed dials since the link last came on a
	// connection.
	dialFailures int
	markedID     uint64                     // the connection its last marker named
	direct       atomic.Pointer[directConn] // the live connection, if any
	outDirect    *directConn                // the connection the outbox's link to it uses
	members      map[wire.ID]int            // its members per channel, from its state
	rx           map[wire.ID]*router.Member // its receivers, per channel
	tx           map[wire.ID]*router.Member // the requests it offers, per channel
	dropped      bool
}

// pendingAck is a join waiting for the other nodes to acknowledge its
// state and to answer its claim on the client ID (clientids.go).
type pendingAck struct {
	waiting   map[*peerNode]bool // nodes yet to acknowledge the state
	claims    map[*peerNode]bool // nodes yet to answer the claim
	member    *router.Member     // the member whose join it is
	claim     []byte             // the claim's message body
	refusedBy string             // the node that refused the claim
	done      chan struct{}
	finished  bool
}

func (p *pendingAck) ackedLocked(n *peerNode) {
	delete(p.waiting, n)
	p.checkLocked()
}

func (p *pendingAck) claimedLocked(n *peerNode) {
	delete(p.claims, n)
	p.checkLocked()
}

// forgetLocked stops waiting for n, dropped or no longer awaited.
func (p *pendingAck) forgetLocked(n *peerNode) {
	delete(p.waiting, n)
	delete(p.claims, n)
	p.checkLocked()
}

// refuseLocked ends the wait: node refused the claim (or won its race).
func (p *pendingAck) refuseLocked(node string) {
	if p.refusedBy == "" {
		p.refusedBy = node
	}
	p.checkLocked()
}

func (p *pendingAck) checkLocked() {
	if !p.finished && (p.refusedBy != "" || len(p.waiting) == 0 && len(p.claims) == 0) {
		p.finished = true
		close(p.done)
	}
}

// remoteID is the client ID of the remote member standing for node in a role.
func remoteID(role, node string) wire.ID {
	sum := sha256.Sum256([]byte("socketbus remote " + role + " " + node))
	return wire.ID(sum[:16])
}

func (c *Cluster) directSubject(to, from string) string {
	return "socketbus." + c.cfg.Name + ".to." + to + "." + from
}

func (c *Cluster) addNodeLocked(name string) *peerNode {
	n := &peerNode{name: name, subject: c.directSubject(name, c.cfg.Node), since: time.Now(),
		members: map[wire.ID]int{}, rx: map[wire.ID]*router.Member{}, tx: map[wire.ID]*router.Member{}}
	c.nodes[name] = n
	c.needFull[name] = true
	c.wakeAnnouncer()
	return n
}

// dropNodeLocked forgets a node: the requests it was part of end with
// peer_gone here (its remote members leave), and joins stop waiting for it.
func (c *Cluster) dropNodeLocked(n *peerNode, why string) {
	if n.dropped {
		return
	}
	n.dropped = true
	delete(c.nodes, n.name)
	delete(c.needFull, n.name)
	c.clearMembersLocked(n)
	c.releaseNodeLocked(n)
	if d := n.direct.Load(); d != nil {
		d.close()
	}
	for _, p := range c.pending {
		p.forgetLocked(n)
	}
	if !n.acked {
		// It never exchanged state (a forged announcement, or a node
		// whose Server never started): what anyone can cause is rate-limited.
		c.warnLimitedf("forgotten", "cluster: node %s forgotten, it never exchanged state: %s", n.name, why)
		return
	}
	c.warnf("cluster: node %s dropped: %s", n.name, why)
}

// resetMembersLocked ends every request n's remote members are part of
// (peer_gone) after the link lost messages; the members stay, as n's
// clients do.
func (c *Cluster) resetMembersLocked(n *peerNode) {
	for _, m := range n.rx {
		m.Reset("messages between the nodes were lost")
	}
	for id, m := range n.tx {
		m.Leave()
		delete(n.tx, id)
	}
}

// clearMembersLocked makes every remote member standing for n leave.
func (c *Cluster) clearMembersLocked(n *peerNode) {
	for id, m := range n.rx {
		m.Leave()
		delete(n.rx, id)
	}
	for id, m := range n.tx {
		m.Leave()
		delete(n.tx, id)
	}
}

// Attach makes the node route for the Server whose routing a is
// (server.Cluster): server.New calls it once. It subscribes to this
// node's subject and asks the other nodes for their state. A node routes
// for one Server: attached already, it fails with an error matching
// server.ErrClusterInUse; and it fails once the node is closed.
func (c *Cluster) Attach(a *server.Attachment) error {
	r := busapi.Router(a)
	if r == nil {
		return errors.New("cluster: Attach needs the Attachment a Server makes")
	}
	return c.attach(r)
}

// attach is Attach for the router r.
func (c *Cluster) attach(r *router.Router) error {
	out := newOutbox(func(n *peerNode, data []byte) error {
		if c.lostByTest(data) {
			return nil // a test's: lost on the way (direct_knobs.go)
		}
		return c.nc.Publish(n.subject, data)
	})
	c.mu.Lock()
	switch {
	case c.r != nil:
		c.mu.Unlock()
		out.close()
		return fmt.Errorf("cluster: node %s: %w", c.cfg.Node, server.ErrClusterInUse)
	case c.closing:
		c.mu.Unlock()
		out.close()
		return fmt.Errorf("cluster: node %s is closed", c.cfg.Node)
	}
	// c.out is set with c.r, in one hold: the heartbeat's tick uses the
	// outbox once it sees a router.
	c.r, c.out = r, out
	c.acct = clusterAccount(r.Memory())
	c.acct.Charge(int64(nodeCost * len(c.nodes))) // nodes heard of before the budget existed
	c.mu.Unlock()
	r.SetObserver(c.observe)
	sub, err := c.nc.Subscribe(c.directSubject(c.cfg.Node, "*"), c.onMessage)
	if err != nil {
		c.detach()
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	// What other nodes send here is bounded by the credit this node's
	// router grants them; a flood past the bounds is dropped, and the
	// link resets (bounds.go).
	limitPending(sub, pendingMsgs, pendingBytes)
	c.mu.Lock()
	c.sub = sub
	c.mu.Unlock()
	// Close waits for the announcer of an attached node: it starts
	// whatever happens next.
	go c.announcer()
	if err := c.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: flush: %w", err)
	}
	// Hello again: every node answers with its state, now that this one
	// listens.
	_ = c.nc.Publish(c.helloSubject(), c.announcement())
	return nil
}

// detach undoes attach when the node cannot subscribe: it routes for no
// router, and Close does not wait for an announcer that never started.
func (c *Cluster) detach() {
	c.mu.Lock()
	out := c.out
	c.r, c.out = nil, nil
	c.acct.Release(c.acct.Used())
	c.acct = nil
	c.mu.Unlock()
	out.close()
}

// Admit returns once every node this one believes alive (liveness.go)
// has acknowledged that j's client joined j's channel here, or after
// joinAckTimeout: from then on a request sent on any of them counts the
// client as a peer (the visibility rule). Every node is sent the join;
// only the live ones are waited for. The join also claims the client ID
// on the bus (clientids.go): Admit fails with code conflict if another
// node has the ID, and the Server refuses the join. The Server calls it
// before it acknowledges the join (server.Cluster).
func (c *Cluster) Admit(j *server.Join) error {
	m := busapi.Member(j)
	if m == nil {
		return errors.New("cluster: Admit needs a Join a Server makes")
	}
	return c.admit(m)
}

// admit is Admit for the router member m.
func (c *Cluster) admit(m *router.Member) error {
	channel := m.Channel()
	c.mu.Lock()
	alone := c.r == nil || len(c.nodes) == 0
	if alone {
		defer c.mu.Unlock()
		return c.admitLocked(m, nil)
	}
	c.mu.Unlock()
	routes := c.routedServers()
	c.mu.Lock()
	if c.r == nil || len(c.nodes) == 0 {
		defer c.mu.Unlock()
		return c.admitLocked(m, nil)
	}
	c.token++
	token := c.token
	p := &pendingAck{waiting: map[*peerNode]bool{}, claims: map[*peerNode]bool{}, member: m, done: make(chan struct{}),
		claim: appendClaim(nil, token, channel, m.ID(), m.KeyHash())}
	nodes := make([]*peerNode, 0, len(c.nodes))
	now := time.Now()
	for _, n := range c.nodes {
		nodes = append(nodes, n)
		if c.awaitedLocked(n, now, routes) {
			p.waiting[n] = true
			if n.answersClaims {
				p.claims[n] = true
			}
		}
	}
	p.checkLocked()
	c.pending[token] = p
	c.mu.Unlock()
	// The claim goes first: a node's refusal comes before its ack of the
	// state, even from one whose answer is not waited for.
	c.sendClaim(nodes, p)
	c.sendState(nodes, []wire.ID{channel}, token)
	deadline := time.NewTimer(joinAckTimeout)
	check := time.NewTicker(joinCheck)
	defer func() {
		deadline.Stop()
		check.Stop()
	}()
wait:
	for {
		select {
		case <-p.done:
			break wait
		case <-deadline.C:
			break wait
		case <-c.stop:
			break wait
		case <-check.C:
			routes := c.routedServers()
			c.mu.Lock()
			now := time.Now()
			for n := range p.waiting {
				if !c.awaitedLocked(n, now, routes) {
					p.forgetLocked(n)
				}
			}
			for n := range p.claims {
				if !c.awaitedLocked(n, now, routes) {
					p.forgetLocked(n)
				}
			}
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, token)
	return c.admitLocked(m, p)
}

// observe is the router's observer: a channel's counts changed.
func (c *Cluster) observe(channel wire.ID) {
	c.dirtyMu.Lock()
	c.dirty[channel] = struct{}{}
	c.dirtyMu.Unlock()
	c.wakeAnnouncer()
}

func (c *Cluster) wakeAnnouncer() {
	select {
	case c.announce <- struct{}{}:
	default:
	}
}

// wantFullState asks the announcer to send node all of this node's state.
func (c *Cluster) wantFullState(node string) {
	c.mu.Lock()
	if _, ok := c.nodes[node]; ok {
		c.needFull[node] = true
	}
	c.mu.Unlock()
	c.wakeAnnouncer()
}

// announcer sends state messages: the changed channels to every node,
// everything to the nodes that need it (new ones, reset links).
func (c *Cluster) announcer() {
	defer close(c.announcerDone)
	for {
		select {
		case <-c.announce:
		case <-c.stop:
			return
		}
		c.dirtyMu.Lock()
		changed := make([]wire.ID, 0, len(c.dirty))
		for id := range c.dirty {
			changed = append(changed, id)
		}
		clear(c.dirty)
		c.dirtyMu.Unlock()

		c.mu.Lock()
		var all, full []*peerNode
		for _, n := range c.nodes {
			all = append(all, n)
			if c.needFull[n.name] {
				full = append(full, n)
				delete(c.needFull, n.name)
			}
		}
		c.mu.Unlock()
		if len(full) > 0 {
			// Acknowledged, so that the node counts as one that answers
			// (liveness.go) before any join waits on it.
			// Its ack also stands for every join begun before it: the
			// full state names their channels, and a join whose own state
			// was lost in a link reset would otherwise wait it out.
			c.mu.Lock()
			c.token++
			token := c.token
			now := time.Now()
			for _, n := range full {
				n.fullToken, n.fullSent = token, now
			}
			// A link reset may have lost the claims of joins waiting for
			// the node's answer: they are sent again.
			var claims []outMsg
			for _, p := range c.pending {
				for _, n := range full {
					if p.claims[n] {
						claims = append(claims, outMsg{to: n, kind: kindClaim, body: p.claim})
					}
				}
			}
			c.mu.Unlock()
			c.sendState(full, c.r.Channels(), token)
			for _, m := range claims {
				c.out.push(m)
			}
		}
		if len(changed) > 0 {
			c.sendState(all, changed, 0)
		}
		select {
		case <-time.After(announceInterval):
		case <-c.stop:
			return
		}
	}
}

// sendState reads the channels' counts and queues them for nodes, under
// stateMu, so that the nodes get a channel's states in the order they
// were read.
func (c *Cluster) sendState(nodes []*peerNode, channels []wire.ID, token uint64) {
	if len(nodes) == 0 {
		return
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	states := make([]channelState, 0, len(channels))
	for _, id := range channels {
		members, ready := c.r.ChannelCounts(id)
		states = append(states, channelState{channel: id, members: members, ready: ready})
	}
	for len(states) > 0 || token != 0 {
		part := states[:min(len(states), maxStateEntries)]
		states = states[len(part):]
		body := appendState(nil, token, part)
		for _, n := range nodes {
			c.out.push(outMsg{to: n, kind: kindState, body: body})
		}
		token = 0
	}
}

// fullStateRetry is how long a full state may go unacknowledged before
// it is sent again: two heartbeats, doubling with each repeat that went
// unanswered up to sixteen, so that a node that never answers (its
// Server never started, or a forged announcement) costs little.
func (c *Cluster) fullStateRetry(repeats int) time.Duration {
	return 2 * c.cfg.Heartbeat << min(repeats, 3)
}

// tick runs every heartbeat: a heartbeat on every link (so a lost message
// shows as a gap within one), resets not yet answered sent again, and
// remote members with nothing left to do let go.
func (c *Cluster) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.r == nil {
		return
	}
	for _, n := range c.nodes {
		c.out.push(outMsg{to: n, kind: kindHeartbeat})
		if n.resetting != 0 {
			c.out.push(outMsg{to: n, kind: kindReset, body: binary.BigEndian.AppendUint64(nil, n.resetting)})
		}
		if !n.fullSent.IsZero() && time.Since(n.fullSent) > c.fullStateRetry(n.fullRepeats) {
			// The full state, or its ack, was lost — NATS drops what
			// it routes before the far node's interest has reached it,
			// or on a route it replaces — and a link's first messages
			// leave no gap to see: it goes again.
			c.needFull[n.name] = true
			n.fullRepeats++
			c.wakeAnnouncer()
		}
		for id, m := range n.tx {
			if m.Holding() == 0 {
				m.Leave()
				delete(n.tx, id)
			}
		}
		for id, m := range n.rx {
			if m.LeaveIfDrained() {
				delete(n.rx, id)
			}
		}
	}
}

// onMessage handles one message from another node. NATS calls it on one
// goroutine for the subscription, in the order the messages came.
func (c *Cluster) onMessage(msg *nats.Msg) {
	c.handleLink(msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:], nil, msg.Data, nil)
}

// handleLink handles one message from node from: from NATS (via nil) or
// read from the direct connection via. A frame message's payload, when
// not nil, was read into a pooled buffer of its own (direct_reader.go):
// the router owns it from then on, and it is released here when the
// message goes no further.
func (c *Cluster) handleLink(from string, via *directConn, data, payload []byte) {
	if payload != nil {
		defer func() {
			if payload != nil {
				frame.PutBuffer(payload)
			}
		}()
	}
	kind, seq, body, err := parseEnvelope(data)
	if err != nil || from == c.cfg.Node {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.r == nil {
		return
	}
	n := c.nodes[from]
	if via != nil {
		if n == nil || n != via.n || n.direct.Load() != via {
			return // a connection replaced or dropped: what it still had is stale
		}
		if kind == kindFrame {
			c.directFrames.Add(1)
		}
	} else if kind == kindFrame {
		c.natsFrames.Add(1)
	}
	if n == nil {
		if c.departedLocked(from, "") || !c.admitNodeLocked(from) {
			return
		}
		n = c.addNodeLocked(from)
		c.recountLocked()
	}
	n.heard = time.Now()
	c.maybeDialLocked(n)
	if kind == kindDirect && via == nil {
		// The link goes on on the connection the marker names: its
		// reader may start (direct.go). The marker is numbered as any
		// message of the link.
		if id, err := parseUint64(body); err == nil {
			c.markDirectLocked(n, id)
		}
	}
	switch {
	case kind == kindReset:
		// The far node lost messages of ours: it has dropped what we were
		// part of together; so do we, and start the link afresh.
		nonce, err := parseUint64(body)
		if err != nil {
			return
		}
		c.resetMembersLocked(n)
		n.inSeq = seq + 1
		c.out.push(outMsg{to: n, kind: kindResetAck, body: binary.BigEndian.AppendUint64(nil, nonce)})
		c.needFull[n.name] = true
		c.wakeAnnouncer()
		return
	case n.resetting != 0:
		if nonce, err := parseUint64(body); kind == kindResetAck && err == nil && nonce == n.resetting {
			n.resetting, n.inSeq = 0, seq+1
			c.needFull[n.name] = true
			c.wakeAnnouncer()
		}
		return // what the far node sent before it heard of the reset
	case n.inSeq != 0 && seq != n.inSeq:
		c.resetLinkLocked(n, fmt.Sprintf("message %d of the link came when %d was due", seq, n.inSeq))
		return
	}
	n.inSeq = seq + 1
	switch kind {
	case kindFrame:
		c.handleFrameLocked(n, via, body, payload)
		payload = nil // the frame's now
	case kindPing:
		role, f, err := parseFrame(body)
		if err == nil {
			c.out.push(outMsg{to: n, kind: kindPong, role: role, frame: f})
		}
	case kindPong:
		role, f, err := parseFrame(body)
		if err != nil {
			return
		}
		// A pong for role toSender answers a ping our router sent our
		// remote receiver for n (whose counterpart there is a sender).
		m := n.tx[f.Header.ChannelID]
		if role == toSender {
			m = n.rx[f.Header.ChannelID]
		}
		if gen, ok := router.PongGeneration(f.Header.RequestID); ok && m != nil {
			m.Pong(gen)
		}
	case kindState:
		c.handleStateLocked(n, body)
	case kindAck:
		token, err := parseUint64(body)
		if err != nil {
			return
		}
		if !n.acked {
			n.acked = true
			c.infof("cluster: node %s joined the bus", n.name)
		}
		n.answersClaims = len(body) > 8 && body[8]&ackAnswersClaims != 0
		if p := c.pending[token]; p != nil {
			p.ackedLocked(n)
		}
		if token == n.fullToken {
			n.fullSent, n.fullRepeats = time.Time{}, 0
			for t, p := range c.pending {
				if t < token {
					p.ackedLocked(n)
				}
			}
		}
	case kindClaim:
		c.handleClaimLocked(n, body)
	case kindClaimed:
		c.handleClaimedLocked(n, body)
	case kindBye:
		c.dropNodeLocked(n, "the node left the bus")
		c.departLocked(n)
		c.recountLocked()
	}
}

// resetLinkLocked starts a reset of the link from n: messages were lost
// (a route cut, a slow consumer), so nothing that crossed it can be
// trusted to be whole. What the two nodes were part of together ends with
// peer_gone on both sides, and the link starts afresh once n answers.
func (c *Cluster) resetLinkLocked(n *peerNode, why string) {
	c.resetMembersLocked(n)
	c.nonce++
	n.resetting = c.nonce
	c.out.push(outMsg{to: n, kind: kindReset, body: binary.BigEndian.AppendUint64(nil, n.resetting)})
	c.warnLimitedf("reset", "cluster: link from %s reset: %s", n.name, why)
}

// handleFrameLocked hands a frame from n's router to the remote member it
// is for.
func (c *Cluster) handleFrameLocked(n *peerNode, via *directConn, body, payload []byte) {
	role, f, err := parseFramePayload(body, payload)
	if err != nil {
		c.resetLinkLocked(n, err.Error())
		return
	}
	channel := f.Header.ChannelID
	var m *router.Member
	switch role {
	case toReceiver:
		m = n.rx[channel]
		if m == nil {
			f.Release()
			return // it drained and left: nothing of it is live
		}
	case toSender:
		m = n.tx[channel]
		if m == nil {
			if f.Header.Type != wire.TypeStart || f.Header.Flags&^(wire.FlagAll|wire.FlagPublish) != wire.FlagReceive {
				f.Release()
				return // the request ended here already
			}
			m, err = c.r.JoinRemote(remoteID("sender", n.name), channel, router.RemoteSender, &remotePeer{c: c, n: n, role: toReceiver})
			if err != nil {
				// Shutting down: the origin takes the request back.
				c.out.push(outMsg{to: n, kind: kindFrame, role: toReceiver, frame: frame.ErrorFrame(
					wire.Header{Version: wire.Version2, Type: wire.TypeError, Flags: wire.FlagRequest,
						RequestID: f.Header.RequestID, ChannelID: channel}, wire.CodeReturned, "the node is shutting down")})
				f.Release()
				return
			}
			n.tx[channel] = m
		}
	default:
		f.Release()
		c.resetLinkLocked(n, fmt.Sprintf("frame for role %d", role))
		return
	}
	var batch *frame.Batch
	if via != nil {
		batch = &via.batch // the reader flushes it (direct_reader.go)
	}
	if err := m.HandleRemoteIn(f, batch); err != nil {
		// The router ended that request on both nodes; the link goes on.
		c.warnLimitedf("refused", "cluster: a request from %s refused: %v", n.name, err)
	}
	if role == toReceiver && m.LeaveIfDrained() {
		delete(n.rx, channel)
	}
}

// handleStateLocked applies n's state: remote receivers for the channels
// where it has members, with its waiting receivers as their credit.
func (c *Cluster) handleStateLocked(n *peerNode, body []byte) {
	token, states, err := parseState(body)
	if err != nil {
		c.resetLinkLocked(n, err.Error())
		return
	}
	for _, s := range states {
		_, known := n.members[s.channel]
		switch {
		case s.members > 0 && !known && !c.admitChannelLocked(n):
			continue // over the budget's cluster share: ignored
		case s.members > 0:
			n.members[s.channel] = s.members
		case known:
			delete(n.members, s.channel)
			c.acct.Release(channelCost)
		}
		m := n.rx[s.channel]
		switch {
		case s.members > 0 && m == nil:
			m, err = c.r.JoinRemote(remoteID("receiver", n.name), s.channel, router.RemoteReceiver, &remotePeer{c: c, n: n, role: toSender})
			if err != nil {
				continue // shutting down
			}
			n.rx[s.channel] = m
		case s.members > 0:
			m.Undrain()
		case m != nil:
			m.Drain()
			if m.LeaveIfDrained() {
				delete(n.rx, s.channel)
			}
			continue
		default:
			continue
		}
		m.SetRemoteCredit(s.ready)
	}
	if token != 0 {
		c.out.push(outMsg{to: n, kind: kindAck, body: append(binary.BigEndian.AppendUint64(nil, token), ackAnswersClaims)})
	}
}

// remotePeer is a remote member's connection: its frames go to its
// counterpart on node n (role names the counterpart).
type remotePeer struct {
	c    *Cluster
	n    *peerNode
	role byte
}

// Send implements router.Peer: the frame is queued for the outbox.
func (p *remotePeer) Send(f frame.Frame, _ *frame.Batch) {
	kind := kindFrame
	if f.Header.Flags == wire.FlagPing {
		kind = kindPing
	}
	p.c.out.push(outMsg{to: p.n, kind: kind, role: p.role, frame: f})
}

// NodeNames names the nodes of the bus this node sees, itself first, the
// others in order.
func (c *Cluster) NodeNames() []string {
	c.mu.Lock()
	names := make([]string, 0, len(c.nodes))
	for name := range c.nodes {
		names = append(names, name)
	}
	c.mu.Unlock()
	slices.Sort(names)
	return append([]string{c.cfg.Node}, names...)
}

// ChannelMembers counts channel's members on the other nodes, by node
// name, as their last state said; nil if none has any.
func (c *Cluster) ChannelMembers(channel uuid.UUID) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]int
	for name, n := range c.nodes {
		if k := n.members[wire.ID(channel)]; k > 0 {
			if out == nil {
				out = map[string]int{}
			}
			out[name] = k
		}
	}
	return out
}
