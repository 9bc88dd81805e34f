package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrNodeNameTaken is returned by New when a live node of the bus already
// has Config.Node as its name.
var ErrNodeNameTaken = errors.New("socketbus: cluster: node name taken by a live node of the bus")

// A node's name is unique in its bus: two nodes with one name would both
// take that name's link messages, and a request offered to it could run on
// both. New claims the name before the node says a word on the bus, with
// NATS request/reply on socketbus.<bus>.name.<node> (docs/PROTOCOL.md
// section 21.1), which every node answers from what it knows:
//
//   - the node with that name: taken (a node still claiming it: claiming);
//   - any other node: seen, while it counts a node by that name (heard
//     within three heartbeats), or free.
//
// The starting node asks once every claimRound and decides at the end of
// a round: taken, or claiming from an older claim (the smaller
// incarnation), refuses; free with no seen accepts. Seen waits: the node
// others still count has not answered for itself, so it is dead (a crashed
// predecessor, which they drop within four heartbeats, ten if they are
// behind) or not yet routed to this one. Past claimSeenRounds heartbeats
// the name is refused if others still count it. With no answer at all the
// node is alone on the bus, or its routes are not up yet: it accepts after
// one round if it has no routes to wait for (external mode, or no Routes),
// after claimWait otherwise.
const (
	claimRound      = 100 * time.Millisecond
	claimWait       = 2 * time.Second
	claimSeenRounds = 12 // heartbeats
)

func (c *Cluster) nameSubject(node string) string { return "socketbus." + c.cfg.Name + ".name." + node }

// answerClaim answers another node's claim of a name (payload: its
// incarnation).
func (c *Cluster) answerClaim(m *nats.Msg) {
	name := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	inc := string(m.Data)
	if m.Reply == "" || inc == c.incarnation {
		return
	}
	var answer string
	c.mu.Lock()
	switch {
	case name == c.cfg.Node && c.claimed:
		answer = "taken " + c.incarnation
	case name == c.cfg.Node:
		answer = "claiming " + c.incarnation
	default:
		answer = "free"
		if n := c.nodes[name]; n != nil && n.incarnation != inc {
			answer = "seen " + n.incarnation
		}
	}
	c.mu.Unlock()
	if name == c.cfg.Node && strings.HasPrefix(answer, "taken") {
		c.warnLimitedf("name", "cluster: a node starting with this node's name (incarnation %s) was refused", inc)
	}
	_ = c.nc.Publish(m.Reply, []byte(answer))
}

// claimName claims the node's name in the bus (see above), and from then
// on answers other nodes' claims.
func (c *Cluster) claimName() error {
	sub, err := c.nc.Subscribe(c.nameSubject("*"), c.answerClaim)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	limitPending(sub, smallPendingMsgs, smallPendingBytes)
	inbox := c.nc.NewRespInbox()
	replies, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	defer func() { _ = replies.Unsubscribe() }()
	if err := c.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: flush: %w", err)
	}
	waitRoutes := c.ns != nil && len(c.cfg.Routes) > 0
	start := time.Now()
	seenLimit := claimWait + claimSeenRounds*c.deadAfter()/3
	for {
		if err := c.nc.PublishRequest(c.nameSubject(c.cfg.Node), inbox, []byte(c.incarnation)); err != nil {
			return fmt.Errorf("cluster: claim the node name: %w", err)
		}
		var free, seen bool
		var seenInc string
		end := time.Now().Add(claimRound)
		for {
			m, err := replies.NextMsg(time.Until(end))
			if err != nil {
				break // the round is over
			}
			word, inc, _ := strings.Cut(string(m.Data), " ")
			switch word {
			case "taken":
				return c.refuseName(inc, "it answered for itself")
			case "claiming":
				if inc < c.incarnation {
					return c.refuseName(inc, "it started claiming it at the same time, and wins the tie")
				}
			case "seen":
				seen, seenInc = true, inc
			case "free":
				free = true
			}
		}
		waited := time.Since(start)
		switch {
		case seen && waited > seenLimit:
			return c.refuseName(seenInc, fmt.Sprintf("other nodes still hear it after %v", waited.Round(time.Millisecond)))
		case seen:
		case free:
			return c.acceptName()
		case !waitRoutes, waited > claimWait:
			// No answer: alone on the bus, as far as NATS can tell.
			return c.acceptName()
		}
	}
}

func (c *Cluster) acceptName() error {
	c.mu.Lock()
	c.claimed = true
	c.mu.Unlock()
	return nil
}

func (c *Cluster) refuseName(holder, why string) error {
	err := fmt.Errorf("%w: %s is node %s's (incarnation %s): %s", ErrNodeNameTaken, c.cfg.Node, c.cfg.Node, holder, why)
	if c.cfg.Logger != nil {
		c.cfg.Logger.Error("cluster: node name refused", "bus", c.cfg.Name, "node", c.cfg.Node, "err", err)
	}
	return err
}
