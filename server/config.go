package server

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// Config configures a Server. The zero value is a working
// configuration: every zero field takes the default its comment gives.
type Config struct {
	// DefaultTimeout applies to requests sent with no deadline (timeout 0
	// on the wire). Zero means 30 s.
	DefaultTimeout time.Duration

	// MaxMessageBytes caps every request and response body. A larger body
	// fails with ErrTooLarge at its sender and an error at its reader.
	// Zero means no limit: bodies of any size stream through.
	MaxMessageBytes int64

	// MaxHeaderBytes caps the header block (protocol v3) of each request,
	// response and Fail, in encoded bytes. A larger block is refused with
	// code too_large for that request alone (its sender gets ErrTooLarge;
	// the connection stays up). The server charges what it holds of a
	// request's headers to its memory budget. Zero means 16 KiB; it is at
	// most 32 KiB (MaxHeaderBytesLimit).
	MaxHeaderBytes int

	// MaxGatherMembers caps the members one gather or publish reaches
	// (Client.Gather, Client.Publish): when more are on the channel the
	// gather is refused with code limit (ErrLimit), never cut short. The
	// server holds up to one stream window (256 KiB) of the body per
	// member, charged to the sender's memory account. Zero means 1024.
	MaxGatherMembers int

	// StreamWindow is the most credit a stream may hold on each hop
	// between a client and the server: what the server holds of a body
	// for it, and what a client reading a body may grant. The join's
	// acknowledgement announces it (docs/PROTOCOL.md sections 7 and 12).
	// Zero means DefaultStreamWindow; it is at least the protocol's
	// implicit window (wire's 256 KiB) and at most a 32nd of MaxMemory,
	// so that a connection's share of the budget holds two windows.
	StreamWindow int

	// MaxChannelQueueBytes caps the request-body bytes the server accepts
	// for requests queued on one channel before a receiver takes them.
	// Past it, senders wait for credit. Zero means 64 MiB.
	MaxChannelQueueBytes int64

	// WriteTimeout bounds each write to a connection (everything queued for
	// it at that moment, sent with one writev): a client that does not take
	// it in time is cut off and the requests it held fail with ErrPeerGone.
	// Zero means 10 s.
	WriteTimeout time.Duration

	// TLSConfig, when set, makes the server speak TLS (1.2 at least) on
	// every connection it accepts. The handshake must finish within
	// JoinTimeout.
	TLSConfig *tls.Config

	// WebSocketOrigins lists the origins a browser page may connect from
	// over WebSocket (ServeWebSocket), checked against the Origin header
	// of the upgrade request, case-insensitively: an entry with a scheme
	// ("https://app.example.com", "http://127.0.0.1:8080") must equal the
	// whole origin, one without ("app.example.com:8443") its host and
	// port; "*" admits any origin. Empty admits only clients that send no
	// Origin (programs, not browsers). TCP connections are not affected.
	WebSocketOrigins []string

	// Authenticate, when set, is called when a connection joins, with the
	// client ID, channel and token (WithToken) it presented. A non-nil
	// error refuses the join with an unauthorized error frame; the client's
	// Dial returns ErrUnauthorized.
	Authenticate func(clientID, channel uuid.UUID, token string) error

	// JoinTimeout is how long a new connection may take to finish its TLS
	// handshake and join. Zero means 5 s.
	JoinTimeout time.Duration

	// FrameReadTimeout is how long a frame may take to arrive once its
	// first byte has: a peer that stalls inside a frame is cut off. Zero
	// means 30 s.
	FrameReadTimeout time.Duration

	// PingInterval is how often the server pings a connection it has heard
	// nothing from; after two unanswered pings the connection is closed and
	// the requests it held fail with ErrPeerGone. Zero means 30 s; negative
	// turns keepalive off.
	PingInterval time.Duration

	// MaxConnections caps open connections; extra connections get an error
	// frame (code limit) and are closed. Zero means 65,536.
	MaxConnections int

	// MaxInFlightPerClient caps the requests one client may have open as a
	// sender at once, and separately the Receive calls it may have waiting;
	// more are refused with ErrLimit. Zero means 1,024.
	MaxInFlightPerClient int

	// MaxQueuedRequestsPerChannel caps the requests waiting for a receiver
	// on one channel; more are refused with ErrLimit. Zero means 4,096.
	MaxQueuedRequestsPerChannel int

	// MaxMemory caps the memory the server holds for frames, in bytes:
	// bodies in flight and queued, write queues, frames being read,
	// pending joins' tokens, and a fixed cost per connection. It counts
	// what frames really cost (buffers, not payload bytes). When it runs
	// short the server refuses new requests, responses and joins with
	// ErrLimit and holds credit back; past its high-water mark it cuts the
	// connections that hold the most. One channel may hold at most a
	// quarter of it and one connection a sixteenth. Zero means 1 GiB; a
	// budget under MinMaxMemory is raised to it. SECURITY.md has the bound
	// as a formula.
	MaxMemory int64

	// Cluster, when set, makes the server a node of a bus of several
	// servers (package cluster provides one, over NATS; this package does
	// not import it). New attaches it (Cluster.Attach); a Cluster serves
	// one Server, and a Server whose Cluster does not attach serves no
	// connection: its Serve returns the error. The server closes the
	// Cluster when the server closes.
	Cluster Cluster

	// Logger, when set, receives the server's logs: at info one line when
	// a connection joins (remote address, client ID, channel, TLS) and one
	// when it closes (reason, duration, requests sent and received); at
	// warn one line for every connection the server refuses or cuts
	// (protocol error and its code, slow consumer, keepalive, join
	// timeout, unauthorized, limits, memory), with its remote address,
	// rate-limited per remote IP and reason, the suppressed ones counted
	// in a later "warnings suppressed" line; the drain's progress; and at
	// debug each request's lifecycle frames. Whether debug is enabled is
	// checked once, in New. Nil means no logs, except for internal
	// errors (a panic recovered while handling a connection's frames),
	// which go to slog.Default().
	Logger *slog.Logger

	// ChannelName, when set, names channels for logs, Conns and Stats
	// when no client on the channel gave its name when joining; it
	// returns "" for a channel it does not know. serve passes the names
	// of its --tokens file. It is called once per join and once per
	// channel per Stats, so it must be cheap and safe for concurrent use.
	ChannelName func(channel uuid.UUID) string
}

// Defaults of Config's zero fields.
const (
	DefaultRequestTimeout       = 30 * time.Second
	DefaultMaxChannelQueueBytes = 64 << 20
	DefaultWriteTimeout         = 10 * time.Second
	DefaultJoinTimeout          = 5 * time.Second
	DefaultFrameReadTimeout     = 30 * time.Second
	DefaultPingInterval         = 30 * time.Second
	DefaultMaxConnections       = 65536
	DefaultMaxInFlightPerClient = 1024
	DefaultMaxQueuedRequests    = 4096
	DefaultMaxMemory            = 1 << 30
	DefaultMaxHeaderBytes       = 16 << 10
	DefaultMaxGatherMembers     = 1024
	DefaultStreamWindow         = 1 << 20
)

// MinStreamWindow is the smallest StreamWindow: the protocol's implicit
// credit per stream and hop, which every client may use without a grant
// (docs/PROTOCOL.md section 12).
const MinStreamWindow = wire.StreamWindow

// MaxHeaderBytesLimit is the largest MaxHeaderBytes: the largest header
// block one frame can carry (docs/PROTOCOL.md section 23.1).
const MaxHeaderBytesLimit = 32 << 10

// MinMaxMemory is the smallest memory budget (Config.MaxMemory): one
// connection's sixteenth of it holds a stream's whole window (256 KiB)
// with room to spare, so that a body of any size streams through. Under
// it a body larger than a window could never be granted credit, and would
// wait for its timeout without a word.
const MinMaxMemory = 8 << 20

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	orDefault(&cfg.DefaultTimeout, DefaultRequestTimeout)
	orDefault(&cfg.MaxChannelQueueBytes, DefaultMaxChannelQueueBytes)
	orDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	orDefault(&cfg.JoinTimeout, DefaultJoinTimeout)
	orDefault(&cfg.FrameReadTimeout, DefaultFrameReadTimeout)
	if cfg.PingInterval == 0 { // negative turns keepalive off
		cfg.PingInterval = DefaultPingInterval
	}
	orDefault(&cfg.MaxConnections, DefaultMaxConnections)
	orDefault(&cfg.MaxInFlightPerClient, DefaultMaxInFlightPerClient)
	orDefault(&cfg.MaxQueuedRequestsPerChannel, DefaultMaxQueuedRequests)
	orDefault(&cfg.MaxMemory, DefaultMaxMemory)
	orDefault(&cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	orDefault(&cfg.MaxGatherMembers, DefaultMaxGatherMembers)
	cfg.MaxHeaderBytes = min(cfg.MaxHeaderBytes, MaxHeaderBytesLimit)
	cfg.MaxMemory = max(cfg.MaxMemory, MinMaxMemory)
	orDefault(&cfg.StreamWindow, DefaultStreamWindow)
	cfg.StreamWindow = max(min(cfg.StreamWindow, int(cfg.MaxMemory/32)), MinStreamWindow)
	return cfg
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
