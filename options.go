package socketbus

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	clientID     ID
	tls          *tls.Config
	token        string
	channelName  string
	pingInterval time.Duration
	dial         func(ctx context.Context, network, addr string) (net.Conn, error)
	reconnect    ReconnectPolicy
	servers      []string
	onConnection func(ConnectionEvent)
	version      uint8 // protocol version to join with; 0 = wire.Version3 (tests set 1 or 2)
	interceptors []Interceptor
}

// WithDialer makes Dial open its connection with dial instead of a
// net.Dialer: for proxies, custom transports, or fault injection in tests.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) DialOption {
	return func(o *dialOptions) { o.dial = dial }
}

// WithTLS makes the client speak TLS with cfg (TLS 1.2 at least).
func WithTLS(cfg *tls.Config) DialOption {
	return func(o *dialOptions) { o.tls = cfg }
}

// WithToken presents token when joining; the server's Authenticate sees it.
func WithToken(token string) DialOption {
	return func(o *dialOptions) { o.token = token }
}

// WithChannelName gives the server the channel's name when joining, for
// its logs and monitoring; ChannelFromName(name) must be the channel Dial
// joins. The name travels in the join (PROTOCOL.md §7): a server older
// than this option takes the join's whole payload for the token, so it
// admits such a join only if it does not authenticate.
func WithChannelName(name string) DialOption {
	return func(o *dialOptions) { o.channelName = name }
}

// DefaultPingInterval is how often a client pings a server it has heard
// nothing from, when WithPingInterval does not say.
const DefaultPingInterval = 30 * time.Second

// WithPingInterval sets how often the client pings a server it has heard
// nothing from; after two unanswered pings it closes the connection and
// calls in flight fail. Zero means 30 s; negative turns keepalive off.
func WithPingInterval(d time.Duration) DialOption {
	return func(o *dialOptions) { o.pingInterval = d }
}

// WithClientID makes the client join with id instead of a fresh random ID.
// The server refuses a second connection with an ID already connected.
// A client with a random ID registers a key with its joins, so that no
// one else can join with its ID while it reconnects; one with an ID of
// the application's choosing registers none, so that a restarted process
// can join with it again at once (PROTOCOL.md §7): to keep others from
// using such an ID, bind it to a token in server.Config.Authenticate.
func WithClientID(id ID) DialOption {
	return func(o *dialOptions) { o.clientID = id }
}
