// Package cluster joins socketbus servers into one bus through NATS: each
// node either runs an embedded nats-server (github.com/nats-io/nats-server)
// routed to the other nodes', or connects to an existing NATS cluster with
// nats.go. There is no membership, gossip or consensus of socketbus's own:
// nodes find and watch each other over NATS subjects.
//
// A *Cluster goes in server.Config.Cluster. The root package never
// imports this one, so a program that only uses the socketbus Client does
// not link NATS.
//
// # How a Server uses its node
//
// A *Cluster is a server.Cluster, the documented interface between a
// Server and its bus. server.New attaches it (Attach); from then on the
// node routes for that Server. A node routes for one Server: given to a
// second, its Attach fails with an error matching server.ErrClusterInUse,
// and that Server's Serve returns it. The Server waits for Admit before it
// acknowledges a join, asks Nodes, NodeNames and ChannelMembers for its
// Stats, and calls Close when it closes. What Attach and Admit are given
// (server.Attachment, server.Join) is opaque to programs; this package
// reaches the router behind them through internal/busapi.
//
// A request that starts on one node is matched to a local receiver first
// and, when none waits, offered to one node that has receivers waiting,
// which claims it or gives it back (docs/PROTOCOL.md section 21 has the
// claim protocol, the messages and the failure handling). The files:
// cluster.go starts and stops the node and its NATS; membership.go finds
// and counts nodes; routing.go is the link state, the state messages and
// the handling of what other nodes send; envelope.go encodes link
// messages; outbox.go publishes them, or queues them for a direct
// connection: with Config.DirectListen, two nodes carry their links on a
// TCP connection between them, NATS keeping membership, state and claims
// (direct.go and the direct_*.go files); departed.go remembers the nodes
// that said bye. The router's side — remote members and the claim — is
// internal/router's remote.go.
//
// Who starts and stops what: New starts the embedded nats-server (embedded
// mode) or connects to NATSURL (external mode) and joins the bus; the
// Server it is given to closes it when the Server closes (Shutdown or
// Close), which leaves the bus and stops the embedded nats-server. An
// external NATS cluster is the user's to run: Close only disconnects.
//
// What Shutdown does to the node's part of the bus: as soon as it begins,
// the node's state says no receiver of its waits, so other nodes stop
// offering it requests, and any offer already on its way is given back to
// its origin (returned), which sends it elsewhere. Requests the node's
// receivers hold — from its own clients or from other nodes — run to
// their end, as on one server. Once they have, the node says bye: the
// other nodes forget its clients at once (a request of theirs still
// waiting for this node fails over to another node's receivers, or with
// no_peers if none is left). Close does the same without waiting: what
// the node held ends with peer_gone on the other nodes.
//
// # Locks
//
// Locks are taken in this order, never the other way round (the router's
// own order is in internal/router's package doc):
//
//	Cluster.mu → the router's locks → outbox.mu, Cluster.dirtyMu
//	Cluster.stateMu → the router's locks → outbox.mu
//
// In detail:
//   - Cluster.mu guards the node table, the links and the joins waiting
//     for acknowledgements. What handles another node's messages
//     (onMessage, heard, expire), the heartbeat's tick and Admit hold it
//     while they call into the router: JoinRemote, HandleRemote, Leave,
//     Reset, Drain, Claimed, Member.Admit and the like take the router's
//     lock and a channel's lock under it.
//   - The router calls into the node with a channel's lock held in two
//     places, and neither takes Cluster.mu: its observer (observe) takes
//     dirtyMu and wakes the announcer without blocking, and a remote
//     member's Peer.Send (remotePeer.Send) only queues on the outbox under
//     outbox.mu. Nothing is locked under dirtyMu or outbox.mu.
//   - stateMu orders the state messages: sendState holds it while it reads
//     channels' counts from the router and queues them. It is taken with
//     Cluster.mu free, and Cluster.mu is never taken under it.
//   - The outbox's goroutine holds outbox.mu only to take its queue; it
//     publishes, and tells a frame's write notification (frame.Frame.Sent,
//     which takes the frame's channel lock), holding no lock.
//   - No lock of the node is held across a call into NATS (Publish,
//     Subscribe, Flush, a subscription's Pending) or the embedded
//     nats-server (Routez): Admit and expire let go of Cluster.mu to ask.
//   - Direct connections (direct.go): Cluster.directMu and a connection's
//     write-queue lock (directConn.wmu) are taken under Cluster.mu or with
//     nothing held, never one under the other, and nothing is locked
//     under them. No socket is written under any of them: a connection's
//     writer goroutine writes holding no lock.
//   - The Server calls the node's methods holding none of its own locks.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// Config configures a node.
type Config struct {
	// Name names the bus: nodes with the same Name form one bus.
	Name string
	// Node is this node's name, unique in the bus: New refuses a name a
	// live node of the bus has (ErrNodeNameTaken; docs/PROTOCOL.md
	// section 21.1 has the claim and how long it waits).
	Node string
	// Listen is where the embedded nats-server listens for routes from
	// other nodes, host:port ("127.0.0.1:0" picks a free port; RouteURL
	// says which).
	Listen string
	// Routes are other nodes' route URLs (nats://host:port), for the
	// embedded nats-server.
	Routes []string
	// NATSURL, instead of embedding, is an existing NATS cluster's client
	// URLs, comma-separated.
	NATSURL string

	// RouteUser and RoutePassword, when set, are required of the routes
	// other nodes' embedded nats-servers open to this one; they give them
	// in their Routes URLs (nats://user:password@host:port). They also
	// key the hello of direct connections (DirectListen), which needs
	// RoutePassword: every node of a bus that takes direct connections
	// is given the same pair. In external mode (NATSURL) they serve only
	// for that.
	RouteUser, RoutePassword string
	// RouteTLS, when set, makes the embedded nats-server's routes speak
	// TLS with this configuration, both ways: its certificate for routes
	// it accepts, its roots (RootCAs) for the ones it opens, and with
	// ClientAuth set, the check of the certificates other nodes present.
	// Direct connections (DirectListen) speak TLS with it the same way,
	// in external mode too: a node verifies the one it dials against
	// RootCAs, for the host of the address that node announces.
	RouteTLS *tls.Config
	// NATSOptions are added to the connection to NATSURL (external
	// mode): credentials (nats.UserCredentials, nats.UserInfo,
	// nats.Token, nats.Nkey) and TLS (nats.Secure, nats.RootCAs).
	NATSOptions []nats.Option

	// Heartbeat is how often the node announces itself; a node not heard
	// from for three heartbeats is gone, and the requests it was part of
	// end with peer_gone. Zero means 1 s.
	Heartbeat time.Duration

	// Logger, when set, receives the node's logs: at info each node
	// that joins the bus (once it has exchanged state with this one) and
	// each link from another node that comes on a direct connection
	// (with the attribute "direct", the other node's name), at warn each
	// node dropped and each link reset; warnings that others can cause
	// are logged at most once a second per kind.
	Logger *slog.Logger

	// DirectListen, when set (host:port, "127.0.0.1:0" picks a free
	// port), makes the node listen there for direct TCP connections from
	// other nodes, and carry its links to the nodes that listen too on
	// them rather than through NATS, which keeps membership, state and
	// claims; a link goes back to NATS while its connection is down. The
	// node announces the address it listens on, so the host must be one
	// the other nodes can reach. It needs RoutePassword (New returns
	// ErrDirectNeedsCredentials without it), and speaks TLS when RouteTLS
	// is set. docs/PROTOCOL.md section 21 has the connection's hello and
	// framing; SECURITY.md what each connection costs.
	DirectListen string

	// deadAfter, when set, replaces the three heartbeats after which a
	// silent node is dropped. Only tests set it (export_test.go): their
	// heartbeats are short, so that a death shows quickly, and a drop
	// threshold of three of them is within a loaded machine's pauses.
	deadAfter time.Duration
	// direct holds the direct connections' test knobs (export_test.go);
	// zero values mean the defaults.
	direct directKnobs
}

// deadAfter is how long a node may go unheard before it is dropped.
func (c *Cluster) deadAfter() time.Duration {
	if c.cfg.deadAfter > 0 {
		return c.cfg.deadAfter
	}
	return 3 * c.cfg.Heartbeat
}

// Cluster is one node's membership of a bus. It is a server.Cluster.
type Cluster struct {
	cfg Config
	ns  *natsserver.Server // the embedded nats-server, nil in external mode
	nc  *nats.Conn

	incarnation string // random, fixed at start: tells a restart apart

	mu       sync.Mutex
	nodes    map[string]*peerNode    // the other nodes heard from
	changed  chan struct{}           // closed and replaced when the count changes
	count    int                     // the count the last change saw, itself included
	needFull map[string]bool         // nodes owed all of this node's state
	departed map[string]departedNode // nodes that said bye lately (departed.go)
	pending  map[uint64]*pendingAck
	token    uint64 // the last join's state token
	nonce    uint64 // the last link reset's nonce
	races    int    // claims on an ID a join here was claiming too (clientids.go)
	closing  bool
	claimed  bool           // the node's name is its own in the bus (names.go)
	r        *router.Router // the Server's router, once attached
	sub      *nats.Subscription

	out      *outbox
	stateMu  sync.Mutex // orders state messages (sendState)
	dirtyMu  sync.Mutex
	dirty    map[wire.ID]struct{} // channels whose counts changed
	announce chan struct{}

	stop          chan struct{}
	done          chan struct{} // the heartbeat has stopped
	announcerDone chan struct{}
	once          sync.Once

	warns warnLimiter // rate-limits the warnings others can cause

	// Direct connections (direct.go).
	directLn     net.Listener
	directAddr   string // where directLn listens, announced
	directCtx    context.Context
	directCancel context.CancelFunc
	directWG     sync.WaitGroup
	directMu     sync.Mutex // guards directConns, directClosed and the hellos' counts; taken under Cluster.mu, nothing under it
	directConns  map[*directConn]struct{}
	directClosed bool
	directDown   chan struct{} // closed and replaced (under directMu) when a connection closes
	// directHellos counts the accepted connections saying hello,
	// directHellosFrom them per IP address (under directMu;
	// direct_backoff.go).
	directHellos     int
	directHellosFrom map[string]int
	// directChanged is closed and replaced (under mu) when a connection's
	// reader may start.
	directChanged chan struct{}
	directFrames  atomic.Uint64 // frame messages handled from direct connections
	natsFrames    atomic.Uint64 // and from NATS
	// directBadSizes counts connections dropped for a length prefix out
	// of bounds (direct_reader.go).
	directBadSizes atomic.Uint64
	directDrops    atomic.Uint64 // connections dropped (direct_writer.go's drop)
	loseMarkers    atomic.Int64  // a test's (direct_knobs.go)
	loseFull       atomic.Int64  // a test's (direct_knobs.go)

	acct      *budget.Account              // what the node keeps for other nodes (bounds.go); set with r
	testHeard atomic.Pointer[func(string)] // tests: called after each announcement is handled
	// testDialFailed, tests: called with each failed dial of a direct
	// connection (direct.go), Cluster.mu held.
	testDialFailed atomic.Pointer[func(peer string, err error)]
}

var _ server.Cluster = (*Cluster)(nil)

func (c *Cluster) infof(format string, args ...any) {
	if c.cfg.Logger != nil {
		c.cfg.Logger.Info(fmt.Sprintf(format, args...), "bus", c.cfg.Name, "node", c.cfg.Node)
	}
}

func (c *Cluster) warnf(format string, args ...any) {
	if c.cfg.Logger != nil {
		c.cfg.Logger.Warn(fmt.Sprintf(format, args...), "bus", c.cfg.Name, "node", c.cfg.Node)
	}
}

// New starts a node: it starts the embedded nats-server (or connects to
// NATSURL) and joins the bus named cfg.Name.
func New(cfg Config) (*Cluster, error) {
	if cfg.Name == "" || cfg.Node == "" {
		return nil, errors.New("cluster: Config needs a Name and a Node")
	}
	for _, name := range []string{cfg.Name, cfg.Node} {
		if strings.ContainsAny(name, ".*> \t\r\n") {
			return nil, fmt.Errorf("cluster: %q is not a NATS subject token: no dots, spaces or wildcards", name)
		}
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.DirectListen != "" && cfg.RoutePassword == "" {
		return nil, ErrDirectNeedsCredentials
	}
	var inc [8]byte
	_, _ = rand.Read(inc[:])
	c := &Cluster{cfg: cfg, incarnation: hex.EncodeToString(inc[:]),
		nodes: map[string]*peerNode{}, changed: make(chan struct{}), count: 1,
		needFull: map[string]bool{}, departed: map[string]departedNode{}, pending: map[uint64]*pendingAck{},
		dirty: map[wire.ID]struct{}{}, announce: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), announcerDone: make(chan struct{}),
		directConns: map[*directConn]struct{}{}, directChanged: make(chan struct{}), directDown: make(chan struct{}),
		directHellosFrom: map[string]int{}}
	c.directCtx, c.directCancel = context.WithCancel(context.Background())
	c.loseMarkers.Store(int64(cfg.direct.loseMarkers))
	c.loseFull.Store(int64(cfg.direct.loseFullStates))
	var err error
	if cfg.NATSURL != "" {
		opts := append([]nats.Option{nats.Name("socketbus " + cfg.Name + "/" + cfg.Node), nats.MaxReconnects(-1),
			nats.ErrorHandler(c.natsErrors)}, cfg.NATSOptions...)
		c.nc, err = nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("cluster: connect to %s: %w", cfg.NATSURL, err)
		}
	} else {
		var secret [16]byte
		_, _ = rand.Read(secret[:])
		password := hex.EncodeToString(secret[:])
		if c.ns, err = startEmbedded(cfg, c.incarnation, password); err != nil {
			return nil, err
		}
		c.nc, err = nats.Connect("", nats.InProcessServer(c.ns), nats.UserInfo("socketbus", password),
			nats.Name("socketbus "+cfg.Name+"/"+cfg.Node), nats.MaxReconnects(-1), nats.ErrorHandler(c.natsErrors))
		if err != nil {
			c.ns.Shutdown()
			return nil, fmt.Errorf("cluster: connect to the embedded nats-server: %w", err)
		}
	}
	if err := c.claimName(); err != nil {
		close(c.done)
		c.Close()
		return nil, err
	}
	if err := c.startDirect(); err != nil {
		close(c.done)
		c.Close()
		return nil, err
	}
	if err := c.joinBus(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startEmbedded runs a nats-server for the node: its client (the node,
// in process) and routes on cfg.Listen to cfg.Routes.
func startEmbedded(cfg Config, incarnation, clientPassword string) (*natsserver.Server, error) {
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("cluster: Listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cluster: Listen %q: %w", listen, err)
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	opts := &natsserver.Options{
		// NATS refuses a route between two servers of one name, and a
		// node starting with a live node's name must reach it to be
		// refused (names.go): the incarnation makes the name unique.
		ServerName: serverName(cfg.Name, cfg.Node, incarnation),
		// socketbus is its only client, in process. NATS routes need a
		// client port, on loopback here, and it admits only the node: a
		// random password made for this run, so nothing but the node
		// itself and other nodes' routes can publish on the bus's
		// subjects.
		Host:     "127.0.0.1",
		Port:     natsserver.RANDOM_PORT,
		Username: "socketbus",
		Password: clientPassword,
		NoLog:    true,
		NoSigs:   true,
		// What waits for the node in the server is bounded by the credit
		// the node's router grants (docs/PROTOCOL.md section 21.6) when
		// every publisher is a node; the node reads without ever
		// blocking. This bounds a flood (bounds.go).
		MaxPending: maxNATSPending,
		Cluster: natsserver.ClusterOpts{Name: cfg.Name, Host: host, Port: port,
			Username: cfg.RouteUser, Password: cfg.RoutePassword},
	}
	if cfg.RouteTLS != nil {
		opts.Cluster.TLSConfig = cfg.RouteTLS.Clone()
		opts.Cluster.TLSTimeout = 5
	}
	for _, r := range cfg.Routes {
		opts.Routes = append(opts.Routes, natsserver.RoutesFromStr(r)...)
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded nats-server: %w", err)
	}
	// nats-server reports a listener it cannot open (a taken route port)
	// only to its logger, as fatal; ReadyForConnections would wait out
	// its whole time. The catcher turns that report into Start's error.
	fatal := &fatalCatcher{err: make(chan string, 1)}
	ns.SetLoggerV2(fatal, false, false, false)
	ns.Start()
	// ReadyForConnections waits out whatever time it is given, even once a
	// listener has failed, so it is asked in short turns, the catcher's
	// report looked at between them.
	deadline := time.Now().Add(embeddedStartTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-fatal.err:
			ns.Shutdown()
			return nil, fmt.Errorf("cluster: embedded nats-server, routes on %s: %s", listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("cluster: embedded nats-server not ready within %v (routes on %s)", embeddedStartTimeout, listen)
		}
	}
	return ns, nil
}

// embeddedStartTimeout bounds how long the embedded nats-server may take
// to open its listeners.
const embeddedStartTimeout = 10 * time.Second

// fatalCatcher is the embedded nats-server's logger while it starts: it
// keeps the first fatal report (a listener that could not be opened) and
// drops the rest, which NoLog would have dropped anyway.
type fatalCatcher struct{ err chan string }

func (l *fatalCatcher) Fatalf(format string, v ...any) {
	select {
	case l.err <- fmt.Sprintf(format, v...):
	default:
	}
}
func (*fatalCatcher) Noticef(string, ...any) {}
func (*fatalCatcher) Warnf(string, ...any)   {}
func (*fatalCatcher) Errorf(string, ...any)  {}
func (*fatalCatcher) Debugf(string, ...any)  {}
func (*fatalCatcher) Tracef(string, ...any)  {}

// RouteURL returns the URL other nodes list in Config.Routes to route to
// this node's embedded nats-server ("" in external mode).
func (c *Cluster) RouteURL() string {
	if c.ns == nil {
		return ""
	}
	addr := c.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats://" + addr.String()
}

// Name returns the bus's name, and Node this node's.
func (c *Cluster) Name() string { return c.cfg.Name }

// Node returns this node's name.
func (c *Cluster) Node() string { return c.cfg.Node }

// Close leaves the bus and, in embedded mode, stops the nats-server. It is
// idempotent. The other nodes are told at once (a bye), so the requests
// this node was still part of end there with peer_gone without waiting for
// three heartbeats; a Server closes its node only after its drain.
func (c *Cluster) Close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.mu.Lock()
		c.closing = true
		attached := c.r != nil
		if attached {
			for _, n := range c.nodes {
				c.out.push(outMsg{to: n, kind: kindBye})
			}
		}
		c.mu.Unlock()
		if attached {
			<-c.announcerDone
			c.out.close()
			c.mu.Lock()
			sub := c.sub
			c.mu.Unlock()
			if sub != nil {
				_ = sub.Unsubscribe()
			}
		}
		c.stopDirect()
		if c.nc != nil {
			if c.nc.IsConnected() {
				_ = c.nc.FlushTimeout(time.Second) // the byes
			}
			c.nc.Close()
		}
		if c.ns != nil {
			c.ns.Shutdown()
			c.ns.WaitForShutdown()
		}
	})
	return nil
}
