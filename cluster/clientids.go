package cluster

import (
	"encoding/binary"
	"fmt"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// Client IDs are unique across the bus (docs/PROTOCOL.md section 21.5).
// A join on this node sends every other node, with the state that makes
// the client visible, a claim: the channel, the client ID and the hash of
// the key the client registered (SHA-256; never the key). Each node
// answers from what its own router holds (router.Claimed), and keeps
// nothing of the claim:
//
//   - a member with the ID connected there and admitted, or the key of one
//     that left within router.KeyMemory that the hash does not match:
//     refused;
//   - a member with the ID there whose own join still waits for the bus
//     (two nodes admitting the ID at the same instant): the node whose
//     name sorts first wins. It refuses the other's claim; the other
//     yields, answers the claim with an admission, and refuses its own
//     join whatever the other nodes answer;
//   - while this node drains (it has sent its drain notice): admitted,
//     since its members' clients move to other nodes;
//   - otherwise admitted.
//
// The join is acknowledged once every live node answered and none refused
// (or joinAckTimeout passed, as the visibility rule's wait); a refused
// join fails with code conflict, and its member leaves without its key
// being remembered. So a member that learned a client's ID from
// Request.From cannot join with it on another node while the client is
// connected, nor within KeyMemory after it left, while the client itself,
// with its key, may reconnect to any node.

// claimSize is a claim's body without its key hash: token, channel, ID,
// the hash's length.
const claimSize = 8 + 16 + 16 + 1

func appendClaim(b []byte, token uint64, channel, client wire.ID, keyHash []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, token)
	b = append(b, channel[:]...)
	b = append(b, client[:]...)
	b = append(b, byte(len(keyHash)))
	return append(b, keyHash...)
}

func parseClaim(body []byte) (token uint64, channel, client wire.ID, keyHash []byte, err error) {
	if len(body) < claimSize {
		return 0, channel, client, nil, errShort
	}
	token = binary.BigEndian.Uint64(body)
	copy(channel[:], body[8:24])
	copy(client[:], body[24:40])
	n := int(body[40])
	keyHash = body[claimSize:]
	if (n != 0 && n != router.KeyHashSize) || len(keyHash) != n {
		return 0, channel, client, nil, fmt.Errorf("cluster: claim with a key hash of %d bytes that says %d", len(keyHash), n)
	}
	if n == 0 {
		keyHash = nil
	}
	return token, channel, client, keyHash, nil
}

func appendClaimed(b []byte, token uint64, refused bool) []byte {
	b = binary.BigEndian.AppendUint64(b, token)
	if refused {
		return append(b, 1)
	}
	return append(b, 0)
}

func parseClaimed(body []byte) (token uint64, refused bool, err error) {
	if len(body) != 9 {
		return 0, false, errShort
	}
	return binary.BigEndian.Uint64(body), body[8] != 0, nil
}

// sendClaim queues p's claim for nodes.
func (c *Cluster) sendClaim(nodes []*peerNode, p *pendingAck) {
	for _, n := range nodes {
		c.out.push(outMsg{to: n, kind: kindClaim, body: p.claim})
	}
}

// handleClaimLocked answers n's claim on a client ID.
func (c *Cluster) handleClaimLocked(n *peerNode, body []byte) {
	token, channel, client, keyHash, err := parseClaim(body)
	if err != nil {
		c.resetLinkLocked(n, err.Error())
		return
	}
	refused := false
	switch claim, m := c.r.Claimed(channel, client, keyHash); claim {
	case router.ClaimHeld:
		refused = true
		c.warnLimitedf("claim", "cluster: node %s admitting client ID %x refused: it is connected here, or left within %s with another key", n.name, client, router.KeyMemory)
	case router.ClaimJoining:
		c.races++
		if c.cfg.Node < n.name {
			refused = true // the race is ours
			break
		}
		m.Yield()
		for _, p := range c.pending {
			if p.member == m {
				p.refuseLocked(n.name)
			}
		}
	}
	c.out.push(outMsg{to: n, kind: kindClaimed, body: appendClaimed(nil, token, refused)})
}

// handleClaimedLocked takes n's answer to a claim of ours.
func (c *Cluster) handleClaimedLocked(n *peerNode, body []byte) {
	token, refused, err := parseClaimed(body)
	if err != nil {
		c.resetLinkLocked(n, err.Error())
		return
	}
	if p := c.pending[token]; p != nil {
		if refused {
			p.refuseLocked(n.name)
		} else {
			p.claimedLocked(n)
		}
	}
}

// admitLocked ends m's join: admitted, unless a node refused its claim
// (p; nil when no node was asked) or it yielded its ID to another node's
// join.
func (c *Cluster) admitLocked(m *router.Member, p *pendingAck) error {
	if p != nil && p.refusedBy != "" {
		return wire.Errorf(wire.CodeConflict, "client ID %x is taken on node %s of the bus (connected there, or left it within %s with another key, or joining there at the same time)", m.ID(), p.refusedBy, router.KeyMemory)
	}
	if !m.Admit() {
		return wire.Errorf(wire.CodeConflict, "client ID %x was admitted on another node of the bus at the same time", m.ID())
	}
	return nil
}
