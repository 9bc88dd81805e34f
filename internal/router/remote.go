package router

import (
	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Remote members stand for another node of a cluster (package cluster,
// docs/PROTOCOL.md section 21). They are members like any connection, with
// a Peer that carries their frames over NATS, in two roles:
//
//   - A remote receiver, on the node where requests start, stands for the
//     receivers of one channel on another node. It counts as a peer (so a
//     sender is not told no_peers while the other node has members), and it
//     is offered requests only when no local receiver waits: its credit
//     (SetRemoteCredit) is how many receivers the other node last said it
//     has waiting. Each request it is offered is pushed to it as to a v2
//     receiver and stays returnable until the other node takes it.
//   - A remote sender, on the node of the receivers, starts the requests
//     that node was offered. It is not a peer (it never receives), and it
//     claims: a request it starts goes to a waiting local receiver at once,
//     under the channel's lock, or is refused with code returned, which
//     its origin takes as the return of a pushed request and requeues.
//
// So a request is offered to one node at a time, and exactly one node
// claims it: the origin's channel lock decides where it is pushed, the
// claimer's decides whether it is taken there. Frames between the two
// members keep their request IDs; HandleRemote turns a frame one member's
// router sent into the frame the other member's router expects.

// RemoteRole is the role of a remote member.
type RemoteRole uint8

// The roles of remote members.
const (
	// RemoteReceiver stands for another node's receivers of the channel.
	RemoteReceiver RemoteRole = iota + 1
	// RemoteSender starts the requests another node offers.
	RemoteSender
)

// JoinRemote joins a remote member for another node on channel channelID.
// clientID must be unique per channel, as any member's.
func (r *Router) JoinRemote(clientID, channelID wire.ID, role RemoteRole, p Peer) (*Member, error) {
	m, err := r.JoinVersion(clientID, channelID, wire.Version3, p)
	if err != nil {
		return nil, err
	}
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	m.remote = role
	ch.remoteN++
	if role == RemoteSender {
		ch.nonPeers++
	}
	ch.seenMembers = ch.localMembersLocked() // JoinVersion counted it as local
	return m, nil
}

// Memory returns the router's root memory account (nil when it has no
// budget): package cluster charges what it keeps for other nodes to a
// child of it.
func (r *Router) Memory() *budget.Account { return r.cfg.Memory }

// remoteWindowFactor scales the per-stream window on the hop between two
// nodes (docs/PROTOCOL.md section 21.6): credit there crosses NATS twice, a
// grant one way and the bytes the other, and that round trip is several
// times a socket's. Measured with the bench's large workload (16 MiB each
// way, three nodes in one process): 362–411 MB/s with the protocol's 256
// KiB, 402–414 with 4x, 410–485 with 8x. Both nodes use the same factor,
// so each side's view of the hop's credit agrees.
const remoteWindowFactor = 4

// window is the per-stream window on the hop between m and the router:
// the protocol's for a connection, remoteWindowFactor times it for a
// remote member. A relay whose upstream is remote holds up to that much,
// charged to the memory budget as any window is.
func (m *Member) window() int {
	if m.remote != 0 {
		return m.initialCredit() // the whole window, from the start
	}
	return m.r.cfg.Window
}

// initialCredit is the credit a stream has on the hop between m and the
// router before any grant: the protocol's implicit window for a
// connection (which may grant up to window() in all, once the server has
// announced it), all of the window for a remote member.
func (m *Member) initialCredit() int {
	if m.remote != 0 {
		return remoteWindowFactor * wire.StreamWindow
	}
	return wire.StreamWindow
}

// countsAsPeer reports whether m is a peer to the channel's senders.
func (m *Member) countsAsPeer() bool {
	return m.remote != RemoteSender && !m.draining
}

// SetRemoteCredit sets how many requests a remote receiver may be offered
// now, and offers it queued requests while the credit lasts.
func (m *Member) SetRemoteCredit(n int) {
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m.gone || m.remote != RemoteReceiver || m.draining {
		return
	}
	m.setRemoteCreditLocked(max(n, 0))
	for req := ch.queue.head; req != nil && m.remoteCredit > 0; {
		next := req.next
		if req.sender.remote == 0 {
			m.remoteCredit--
			ch.pushLocked(req, m)
		}
		req = next
	}
	if m.remoteCredit == 0 {
		ch.dropRemoteLocked(m)
	}
}

func (m *Member) setRemoteCreditLocked(n int) {
	ch := m.ch
	m.remoteCredit = n
	if n > 0 && !m.offered {
		m.offered = true
		ch.remotes = append(ch.remotes, m)
	} else if n == 0 {
		ch.dropRemoteLocked(m)
	}
}

// dropRemoteLocked takes m off the channel's list of remote receivers with
// credit.
func (ch *channel) dropRemoteLocked(m *Member) {
	m.remoteCredit = 0
	if !m.offered {
		return
	}
	m.offered = false
	for i, x := range ch.remotes {
		if x == m {
			ch.remotes = append(ch.remotes[:i], ch.remotes[i+1:]...)
			break
		}
	}
}

// offerRemoteLocked pushes req to a remote receiver with credit, if there
// is one, and reports whether it did. Requests a remote sender started are
// never offered on: a request crosses at most one node boundary. One that
// comes here — its receiver on this node gave it back (a v2 return) and
// no other receiver here waits — goes back to its origin (giveBackLocked)
// and is no longer queued here.
func (ch *channel) offerRemoteLocked(req *request) bool {
	if req.sender.remote == RemoteSender {
		ch.giveBackLocked(req)
		return true
	}
	if len(ch.remotes) == 0 || req.sender.remote != 0 {
		return false
	}
	// Round robin: the first with credit goes to the back.
	m := ch.remotes[0]
	copy(ch.remotes, ch.remotes[1:])
	ch.remotes[len(ch.remotes)-1] = m
	m.remoteCredit--
	if m.remoteCredit == 0 {
		ch.dropRemoteLocked(m)
	}
	ch.pushLocked(req, m)
	return true
}

// giveBackLocked ends here a request another node offered, which no
// receiver here holds any more, by giving it back to its origin: code
// returned, as a refused claim is, so the origin requeues it at the head
// of its queue and offers it to its next waiting receiver (21.4). It is
// given back only while no receiver took it — a pushed request's return
// requires that — so it runs at most once, wherever it runs. On this node
// it is as if it had never started: no outcome is counted.
func (ch *channel) giveBackLocked(req *request) {
	r := ch.r
	ch.send(req.sender, errorFrame(ch, req.sender, req.id, wire.FlagRequest, wire.CodeReturned,
		"the receiver on the node it was offered to gave it back"))
	ch.finishLocked(req, OutcomeRejected)
	// finishLocked counted an outcome for a request this node only held
	// for its origin: take the start and the outcome back.
	r.counts[OutcomeRejected].Add(-1)
	ch.counts[OutcomeRejected].Add(-1)
	r.started.Add(-1)
	req.sender.started--
}

// Drain marks a remote receiver whose node has no member of the channel
// left: it is no longer a peer nor offered requests, and it leaves once
// the requests it holds have ended (LeaveIfDrained). A later SetRemoteCredit
// does nothing until Undrain.
func (m *Member) Drain() {
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m.gone || m.draining {
		return
	}
	m.draining = true
	ch.nonPeers++
	ch.dropRemoteLocked(m)
	ch.failOrphansLocked()
}

// Undrain makes a drained remote receiver a peer again: its node has
// members of the channel once more.
func (m *Member) Undrain() {
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m.gone || !m.draining {
		return
	}
	m.draining = false
	ch.nonPeers--
}

// LeaveIfDrained leaves a drained member that holds no request, and
// reports whether it has left.
func (m *Member) LeaveIfDrained() bool {
	ch := m.ch
	ch.mu.Lock()
	gone, leave := m.gone, m.draining && len(m.held) == 0
	ch.mu.Unlock()
	if leave {
		m.Leave()
	}
	return gone || leave
}

// Holding returns how many requests the member holds as receiver and has
// sent and not ended.
func (m *Member) Holding() int {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	return len(m.held) + len(m.sent)
}

// HandleRemote handles a frame that the other node's router sent to this
// member's counterpart there (the remote sender for a remote receiver, and
// the other way round), turning it into the frame this router expects
// from the member. Frames for requests that have ended are dropped.
//
// A frame this router refuses — a request start whose ID is live on this
// node's channel, which any client on either node can cause, or a stream
// out of order — ends only the request it is about, with code protocol on
// both nodes (endRemoteLocked), and is returned for the caller to log.
// Nothing else crossing the link is touched: a link fault is the link's
// (lost or malformed link messages), never one request's.
func (m *Member) HandleRemote(f frame.Frame) error { return m.HandleRemoteIn(f, nil) }

// HandleRemoteIn is HandleRemote for a caller that reads frames in
// bursts, as a connection's reader does: the frames it makes for local
// connections join batch, which the caller flushes once the burst is
// handled (with no router or cluster lock held), rather than each
// waking its connection's writer.
func (m *Member) HandleRemoteIn(f frame.Frame, batch *frame.Batch) error {
	err := m.handleRemote(&f, batch)
	f.Release()
	return err
}

func (m *Member) handleRemote(f *frame.Frame, batch *frame.Batch) error {
	ch := m.ch
	ch.mu.Lock()
	ch.batch = batch
	defer func() {
		ch.batch = nil
		ch.noticeLocked()
		ch.mu.Unlock()
	}()
	if m.gone {
		return nil
	}
	h := &f.Header
	id := h.RequestID
	from := h.ClientID // a delivery names its true sender (PROTOCOL.md section 23.5)
	h.ClientID, h.ChannelID = m.id, ch.id
	if h.Type != wire.TypeError {
		h.Version = m.version // an error's payload is read in the version it was made in
	}
	var err error
	switch m.remote {
	case RemoteReceiver:
		err = m.remoteToReceiverLocked(f, from)
	case RemoteSender:
		err = m.remoteToSenderLocked(f, from)
	default:
		return protocolErrorf("member %x is not remote", m.id)
	}
	if err != nil {
		m.endRemoteLocked(id, err)
	}
	return err
}

// endRemoteLocked ends the request a refused frame was about, on both
// nodes, with code protocol. If this member has the request, failing it
// tells its local end and, through this member, the other node. If it
// does not — a start refused because its ID is live here for another
// member — only the other node is told: the live request here is someone
// else's, and goes on.
func (m *Member) endRemoteLocked(id wire.ID, cause error) {
	if id == (wire.ID{}) {
		return // push credit and its like: no request to end
	}
	ch := m.ch
	msg := relayedMessage("refused by the node it crossed to: " + cause.Error())
	req := m.held[id]
	if m.remote == RemoteSender {
		req = m.sent[id]
	}
	if req != nil {
		ch.failLocked(req, wire.CodeProtocol, msg)
		return
	}
	if m.remote == RemoteSender {
		ch.send(m, errorFrame(ch, m, id, wire.FlagRequest, wire.CodeProtocol, msg))
	}
}

// remoteToReceiverLocked handles, for a remote receiver, what the other
// node's router sent its remote sender: the response, grants for the
// request body, and errors (a refusal to claim is code returned).
func (m *Member) remoteToReceiverLocked(f *frame.Frame, from wire.ID) error {
	h := &f.Header
	ch := m.ch
	switch {
	case h.Flags.Has(wire.FlagAll) && !h.Flags.Has(wire.FlagCredit):
		// A gather's part there: its announcement, a member's reply
		// (from names the member) or its end.
		lg := m.held[h.RequestID]
		if lg == nil || !lg.isLeg() {
			return nil
		}
		return m.legFrameLocked(lg, f, from)
	case h.Flags == wire.FlagResponse && h.Type != wire.TypeError:
		if m.held[h.RequestID] == nil {
			return nil
		}
		return m.handleResponseLocked(f)
	case h.Flags == wire.FlagCredit|wire.FlagRequest:
		if m.held[h.RequestID] == nil {
			return nil
		}
		return m.handleCreditLocked(h, f.Payload, false)
	case h.Type == wire.TypeError:
		req := m.held[h.RequestID]
		if req == nil {
			return nil
		}
		e, err := m.parseError(f)
		if err != nil {
			return err
		}
		if e.Code == wire.CodeReturned && req.isLeg() {
			// A gather's part that node refused: it has no member left.
			ch.failLocked(req, wire.CodePeerGone, "the node has no member of the channel any more")
			return nil
		}
		if e.Code == wire.CodeReturned {
			// Not claimed: back to the head of the queue, and no more
			// offers to that node until it says it has receivers again.
			ch.dropRemoteLocked(m)
			if req.state == reqPushed {
				ch.requeueLocked(req)
				return nil
			}
			ch.failLocked(req, wire.CodePeerGone, "the receiving node gave back a request it had taken")
			return nil
		}
		if e.Code == wire.CodeRemote {
			ch.takeLocked(req)
			ch.remoteFailLocked(req, e)
			return nil
		}
		ch.failLocked(req, e.Code, relayedMessage(e.Message))
		return nil
	}
	return nil // a late frame, or one a sender is sent that means nothing here
}

// remoteToSenderLocked handles, for a remote sender, what the other node's
// router sent its remote receiver: the request stream, grants for the
// response, and the request's end (cancel, timeout, its sender gone).
func (m *Member) remoteToSenderLocked(f *frame.Frame, from wire.ID) error {
	h := &f.Header
	ch := m.ch
	switch {
	case h.Flags&^(wire.FlagAll|wire.FlagPublish) == wire.FlagReceive && h.Type == wire.TypeStart:
		if h.RequestID == (wire.ID{}) {
			return nil // a push credit refusal: the origin keeps none for us
		}
		// A receiver's start carries the poll ID first; a sender's does not.
		if len(f.Payload) < 16 {
			return protocolErrorf("a request start for a receiver carries a 16-byte poll ID")
		}
		// The body moves to a buffer of its own: the pool knows buffers
		// by their capacity, which a re-slice would change.
		body := f.Payload[16:]
		var kept []byte
		if len(body) > 0 {
			kept = frame.GetBuffer(len(body))
			copy(kept, body)
		}
		f.Release()
		f.Payload, f.Pooled = kept, kept != nil
		h.Length = uint32(len(kept))
		// A gather's part (receive|all) starts as a gather of this node's
		// members (docs/PROTOCOL.md section 24.5).
		h.Flags = wire.FlagRequest | h.Flags&(wire.FlagAll|wire.FlagPublish)
		if !h.Flags.Has(wire.FlagAll) {
			h.Flags = wire.FlagRequest
		}
		return m.startRequestLocked(f, from)
	case h.Flags == wire.FlagReceive && (h.Type == wire.TypeChunk || h.Type == wire.TypeEnd):
		req := m.sent[h.RequestID]
		if req == nil {
			return nil
		}
		h.Flags = wire.FlagReceive
		return ch.streamFrameLocked(req, f, false)
	case h.Flags == wire.FlagCredit|wire.FlagResponse:
		if req := m.sent[h.RequestID]; req == nil || req.state != reqResponding {
			return nil
		}
		return m.handleCreditLocked(h, f.Payload, true)
	case h.Flags == wire.FlagCredit|wire.FlagResponse|wire.FlagAll:
		return m.handleReplyCreditLocked(h, f.Payload)
	case h.Type == wire.TypeError:
		req := m.sent[h.RequestID]
		if req == nil {
			return nil
		}
		e, err := m.parseError(f)
		if err != nil {
			return err
		}
		ch.failLocked(req, e.Code, relayedMessage(e.Message))
		return nil
	}
	return nil
}

// Reset ends every request a remote member holds or sent with peer_gone
// and takes back its credit, but keeps it joined: the link to its node
// lost messages, not the node its members.
func (m *Member) Reset(msg string) {
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m.gone {
		return
	}
	for _, req := range m.sent {
		ch.failLocked(req, wire.CodePeerGone, msg)
	}
	for _, req := range m.held {
		ch.failLocked(req, wire.CodePeerGone, msg)
	}
	ch.dropRemoteLocked(m)
}
