package server

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/busapi"
	"github.com/socketbus/socketbus/internal/router"
)

// Cluster is the bus a Server is a node of: package cluster provides one,
// over NATS (this package does not import it, so a program that serves
// alone does not link NATS). A Server uses its Cluster this way:
//
//   - New attaches it (Attach), once, before the first connection;
//   - each join waits for Admit before the client is told it has joined;
//   - Stats asks Nodes, NodeNames and ChannelMembers;
//   - Shutdown and Close close it (Close), after the drain.
//
// The methods are called concurrently, and with none of the Server's
// locks held. docs/PROTOCOL.md section 21 has what the nodes say to each
// other.
type Cluster interface {
	// Attach makes the cluster route requests across the nodes of the
	// bus for the Server whose routing a is: requests that find no
	// receiver on this node go to another node's, and other nodes'
	// requests reach this one's receivers. A Cluster routes for one
	// Server: attached already, it returns an error matching
	// ErrClusterInUse. When Attach fails the Server logs it and serves no
	// connection (Serve returns the error).
	Attach(a *Attachment) error

	// Admit returns once every node of the bus it believes alive has
	// seen j's client join j's channel here, so that a request sent on
	// any of them counts it as a peer, and no node has its client ID
	// (docs/PROTOCOL.md section 21.5). A non-nil error refuses the join
	// and closes the connection; package cluster's refusal of an ID
	// another node has reaches the client first, as code conflict (Dial
	// returns socketbus.ErrConflict).
	Admit(j *Join) error

	// Nodes returns how many nodes of the bus this node sees, itself
	// included.
	Nodes() int

	// NodeNames names the nodes of the bus this node sees, itself first.
	NodeNames() []string

	// ChannelMembers counts channel's clients on the other nodes, by node
	// name; nil if none has any.
	ChannelMembers(channel uuid.UUID) map[string]int

	// Close leaves the bus. The Server calls it once, when it closes.
	Close() error
}

// ErrClusterInUse is the error (wrapped) of Cluster.Attach, and of the
// Serve of a Server whose Config.Cluster serves another Server already.
var ErrClusterInUse = errors.New("socketbus: the cluster serves another server")

// Attachment is a Server's routing, which the Server hands its Cluster
// when it attaches it (Cluster.Attach). It is opaque: only the Server
// makes one, and only package cluster reaches what it holds.
type Attachment struct {
	r *router.Router
}

// Join is a connection joining a Server's channel, which waits for its
// Cluster to admit it (Cluster.Admit). Beyond its client ID and channel
// it is opaque: only the Server makes one, and only package cluster
// reaches what it holds.
type Join struct {
	m *router.Member
}

// ClientID returns the client ID of the joining connection.
func (j *Join) ClientID() uuid.UUID { return uuid.UUID(j.m.ID()) }

// Channel returns the channel it joins.
func (j *Join) Channel() uuid.UUID { return uuid.UUID(j.m.Channel()) }

func init() {
	busapi.Router = func(a any) *router.Router {
		if a, ok := a.(*Attachment); ok && a != nil {
			return a.r
		}
		return nil
	}
	busapi.Member = func(j any) *router.Member {
		if j, ok := j.(*Join); ok && j != nil {
			return j.m
		}
		return nil
	}
}

// attachCluster attaches Config.Cluster, if any, to the server's router
// (New's last step). A Cluster that does not attach is logged, and its
// error kept for Serve to return; the server routes through it no
// request, and counts none of its nodes.
func (s *Server) attachCluster() {
	c := s.cfg.Cluster
	if c == nil {
		return
	}
	if err := c.Attach(&Attachment{r: s.router}); err != nil {
		s.logger().Error("cluster: cannot route across nodes", "err", err)
		s.clusterErr = fmt.Errorf("socketbus: server: cluster: %w", err)
		return
	}
	s.cluster = c
}

// closeCluster closes Config.Cluster, once, when the server has closed,
// unless it serves another Server.
func (s *Server) closeCluster() {
	c := s.cfg.Cluster
	if c == nil || errors.Is(s.clusterErr, ErrClusterInUse) {
		return
	}
	s.clusterOnce.Do(func() { _ = c.Close() })
}

// admit asks the cluster to admit m's join, if the server routes for a
// bus.
func (s *Server) admit(m *router.Member) error {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.Admit(&Join{m: m})
}
