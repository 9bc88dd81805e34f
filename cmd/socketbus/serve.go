package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// defaultClusterListen is where an embedded NATS listens for routes from
// other nodes unless --cluster-listen says otherwise: bus ports are 74xx,
// monitors 75xx and routes 76xx, as in the README's cluster.
const defaultClusterListen = "127.0.0.1:7611"

// serveOptions are serve's flags.
type serveOptions struct {
	addr         string
	monitor      string
	websocket    string   // --websocket: where to accept WebSocket clients
	wsOrigins    []string // --websocket-origins
	drainTimeout time.Duration
	logFormat    string
	logLevel     string
	tlsCert      string
	tlsKey       string
	tokens       string

	metricsChannels int

	// server.Config's fields, one flag each.
	defaultTimeout              time.Duration
	maxMessageBytes             byteSize
	maxHeaderBytes              byteSize
	maxChannelQueueBytes        byteSize
	maxMemory                   byteSize
	streamWindow                byteSize
	clusterName, node           string
	clusterListen, natsURL      string
	clusterDirect               string // --cluster-direct: where to take direct connections from other nodes
	routes                      []string
	clusterSecurity             clusterSecurity
	writeTimeout                time.Duration
	joinTimeout                 time.Duration
	frameReadTimeout            time.Duration
	pingInterval                time.Duration
	maxConnections              int
	maxInFlightPerClient        int
	maxQueuedRequestsPerChannel int
	maxGatherMembers            int
}

func newServeCommand(s *streams) *cobra.Command {
	o := serveOptions{maxChannelQueueBytes: server.DefaultMaxChannelQueueBytes, maxMemory: server.DefaultMaxMemory}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a socketbus server",
		Long: `Run a socketbus server until SIGINT or SIGTERM.

On start it prints where it listens, then logs with log/slog to stderr: at
info one line when a connection joins (remote address, client, channel and
its name, TLS) and one when it closes (reason, duration, requests sent and
received); at warn every connection it refuses or cuts (protocol error and
its code, slow consumer, keepalive, join timeout, unauthorized, limits,
memory), with the remote address, at most 5 a source (remote IP and reason)
and 50 in all per 10 s, the rest counted in a "warnings suppressed" line;
with --log-level debug each request's frames too.

On SIGINT or SIGTERM it stops taking connections and requests, fails the
queued requests, lets the requests receivers have taken finish for up to
--drain-timeout, then exits 0. A second signal exits at once, with status 1.

On SIGHUP it reloads the --tokens file and the --tls-cert and --tls-key
files without dropping a connection: new joins see the new tokens, new TLS
handshakes the new certificate. Connections already joined keep running,
even if their token was removed (SECURITY.md). A file that fails to load
leaves its old settings in place, and the log says why.

Every flag can also be set by an environment variable, named after the flag:
--max-message-bytes is SOCKETBUS_MAX_MESSAGE_BYTES. A flag on the command
line wins over the environment. Sizes take binary suffixes (64KiB, 16MiB).

With --monitor ADDR, an HTTP endpoint serves /metrics (Prometheus), /healthz
(200, or 503 while draining), /status (JSON, what "socketbus status" shows)
and /connz (JSON, the open connections, what "socketbus status --conns"
shows). It has no authentication: an address without a host (:7511) listens
on 127.0.0.1; expose it (0.0.0.0:7511) only on a network you trust. Each
port tells a client of the other what it is: an HTTP request on the bus port
gets a 400 saying so, and a socketbus client on the monitor port a 400
naming the bus address, which send and receive print. /metrics has series
per channel (clients, queued, in flight, requests by outcome), labelled
with the channel's name when the server knows it, for at most
--metrics-channels channels; the rest add up under channel="other".

With --websocket ADDR it also accepts clients over WebSocket on ADDR (any
path): browsers and the TypeScript client (clients/js), speaking the same
protocol with the same tokens, limits and TLS (wss:// with --tls-cert).
A browser page may connect only from an origin listed in
--websocket-origins; programs, which send no Origin, always may.

With --tls-cert and --tls-key, a client that joins without TLS is refused
with a plain error saying the server requires TLS (--tls).

With --tokens FILE, only clients presenting an allowed token may join a
channel. The file has one "channel-name token" pair per line; a channel may
have several lines; blank lines and lines starting with # are ignored. A
channel not in the file admits no one.`,
		Example: `  # Listen on the default address, 127.0.0.1:7411:
  socketbus serve

  # Listen on every interface, with metrics on port 7511 and JSON logs:
  socketbus serve --addr :7411 --monitor 127.0.0.1:7511 --log-format json

  # A bus of three nodes on one machine, each with its embedded NATS:
  socketbus serve --addr 127.0.0.1:7001 --cluster-name demo --node n1 --cluster-listen 127.0.0.1:7401
  socketbus serve --addr 127.0.0.1:7002 --cluster-name demo --node n2 --cluster-listen 127.0.0.1:7402 --routes nats://127.0.0.1:7401
  socketbus serve --addr 127.0.0.1:7003 --cluster-name demo --node n3 --cluster-listen 127.0.0.1:7403 --routes nats://127.0.0.1:7401

  # Routes only nodes can open: a user and password (from the environment)
  # and mutual TLS with certificates a CA of your own signed:
  SOCKETBUS_CLUSTER_PASSWORD=s3cret socketbus serve --cluster-name demo --node n2 \
    --cluster-listen 10.0.0.2:7611 --routes nats://10.0.0.1:7611 --cluster-user bus \
    --cluster-tls-cert node.crt --cluster-tls-key node.key --cluster-tls-ca ca.crt

  # Requests between nodes on direct connections (NATS for membership only),
  # keyed with the route credentials and encrypted with the routes' TLS:
  SOCKETBUS_CLUSTER_PASSWORD=s3cret socketbus serve --cluster-name demo --node n2 \
    --cluster-listen 10.0.0.2:7611 --routes nats://10.0.0.1:7611 --cluster-user bus \
    --cluster-direct 10.0.0.2:7711 \
    --cluster-tls-cert node.crt --cluster-tls-key node.key --cluster-tls-ca ca.crt

  # Rotate the tokens or the certificate of a running server:
  kill -HUP $(pidof socketbus)

  # TLS, tokens and limits, from the environment:
  SOCKETBUS_TLS_CERT=bus.crt SOCKETBUS_TLS_KEY=bus.key SOCKETBUS_TOKENS=tokens.txt \
  SOCKETBUS_MAX_MESSAGE_BYTES=16MiB socketbus serve`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(s) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "addr", defaultServer, "address to listen on, `host:port` (the port defaults to "+defaultPort+")")
	fs.StringVar(&o.monitor, "monitor", "", "serve /metrics, /healthz, /status and /connz over HTTP, unauthenticated, on `host:port` (off when empty; no host means 127.0.0.1)")
	fs.StringVar(&o.websocket, "websocket", "", "also accept WebSocket clients (browsers; ws://, or wss:// with --tls-cert) on `host:port` (off when empty)")
	fs.StringSliceVar(&o.wsOrigins, "websocket-origins", nil, "origins whose browser pages may connect over --websocket, comma-separated: `list` of https://host[:port] or host[:port]; * allows any (default: none, only clients that send no Origin)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "speak TLS with the certificate in PEM `file` (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "the TLS certificate's private key, a PEM `file`")
	fs.StringVar(&o.tokens, "tokens", "", "admit to each channel only the tokens listed in `file` (reloaded on SIGHUP)")
	fs.IntVar(&o.metricsChannels, "metrics-channels", defaultMetricsChannels, "most channels with /metrics series of their own; the rest add up under channel=\"other\"")

	fs.DurationVar(&o.defaultTimeout, "default-timeout", server.DefaultRequestTimeout, "timeout of requests sent without one")
	fs.Var(&o.maxMessageBytes, "max-message-bytes", "largest request or response body (0: no limit)")
	o.maxHeaderBytes = server.DefaultMaxHeaderBytes
	o.streamWindow = server.DefaultStreamWindow
	fs.Var(&o.maxHeaderBytes, "max-header-bytes", "largest header block of a request, response or failure (protocol v3; at most 32KiB)")
	fs.Var(&o.maxChannelQueueBytes, "max-channel-queue-bytes", "request-body bytes held for one channel's queued requests before senders wait")
	fs.Var(&o.streamWindow, "stream-window", "most bytes of one body in flight on each hop between a client and the server (announced to clients; at least 256KiB, at most --max-memory/32)")
	fs.Var(&o.maxMemory, "max-memory", "memory the server may hold for frames, all connections together; also sets the Go runtime's soft memory limit to this plus 64MiB unless GOMEMLIMIT is set")
	fs.StringVar(&o.clusterName, "cluster-name", "", "join the bus of this `name`: nodes with the same name form one bus through NATS (off when empty)")
	fs.StringVar(&o.node, "node", "", "this node's `name`, unique in the bus (default: the host name and --addr's port)")
	fs.StringVar(&o.clusterListen, "cluster-listen", defaultClusterListen, "embedded NATS: where this node listens for routes from other nodes, `host:port`")
	fs.StringSliceVar(&o.routes, "routes", nil, "embedded NATS: other nodes' route `URLs` (nats://host:port), comma-separated")
	fs.StringVar(&o.natsURL, "nats", "", "instead of embedding NATS, use the existing NATS cluster at these `URLs`")
	fs.StringVar(&o.clusterDirect, "cluster-direct", "", "carry requests between this node and the others that set it on direct TCP connections, accepted on `host:port` (announced to them: a host they can reach), NATS only for membership; needs --cluster-user and --cluster-password, and speaks TLS with --cluster-tls-cert (off when empty)")
	o.clusterSecurity.addFlags(fs)
	fs.DurationVar(&o.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "how long a connection may accept no bytes before it is cut off")
	fs.DurationVar(&o.joinTimeout, "join-timeout", server.DefaultJoinTimeout, "how long a new connection may take to finish TLS and join")
	fs.DurationVar(&o.frameReadTimeout, "frame-read-timeout", server.DefaultFrameReadTimeout, "how long a frame may take to arrive once it has begun")
	fs.DurationVar(&o.pingInterval, "ping-interval", server.DefaultPingInterval, "ping a quiet connection this often; two unanswered pings close it (negative: off)")
	fs.IntVar(&o.maxConnections, "max-connections", server.DefaultMaxConnections, "most open connections")
	fs.IntVar(&o.maxInFlightPerClient, "max-in-flight-per-client", server.DefaultMaxInFlightPerClient, "most requests one client may have open as a sender")
	fs.IntVar(&o.maxQueuedRequestsPerChannel, "max-queued-requests-per-channel", server.DefaultMaxQueuedRequests, "most requests waiting for a receiver on one channel")
	fs.IntVar(&o.maxGatherMembers, "max-gather-members", server.DefaultMaxGatherMembers, "most members one gather or publish (send --all, --publish) may reach; a channel with more refuses it, status 9")
	bindEnv(fs)
	return cmd
}

// minMaxMemory is the smallest --max-memory the server takes (it raises
// a smaller server.Config.MaxMemory to it): serve refuses a smaller one
// rather than raise it without a word.
const minMaxMemory = server.MinMaxMemory

// checkAddresses checks the addresses serve listens on and dials, so that
// a mistyped one is a usage error (status 2) before anything starts.
func (o *serveOptions) checkAddresses() error {
	if _, _, err := net.SplitHostPort(withDefaultPort(o.addr, defaultPort)); err != nil {
		return usagef("--addr %q: %w", o.addr, err)
	}
	if o.clusterDirect != "" {
		if o.clusterName == "" {
			return usagef("--cluster-direct needs --cluster-name")
		}
		if _, _, err := net.SplitHostPort(o.clusterDirect); err != nil {
			return usagef("--cluster-direct %q: %w", o.clusterDirect, err)
		}
	}
	if o.clusterName == "" || o.natsURL != "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(o.clusterListen); err != nil {
		return usagef("--cluster-listen %q: %w", o.clusterListen, err)
	}
	for _, r := range o.routes {
		u, err := url.Parse(r)
		if err == nil && (u.Scheme != "nats" && u.Scheme != "nats-route" || u.Port() == "") {
			err = errors.New("want nats://host:port")
		}
		if err != nil {
			return usagef("--routes %q: %w", r, err)
		}
	}
	return nil
}

// softLimitHeadroom is what serve lets the Go heap grow beyond --max-memory
// before the garbage collector works harder: the runtime's own memory, and
// garbage not yet collected.
const softLimitHeadroom = 64 << 20

// config checks the options and turns them into a server.Config, with the
// tokens and certificate that SIGHUP reloads.
func (o *serveOptions) config(log *slog.Logger) (server.Config, *reloadable, error) {
	for name, d := range map[string]time.Duration{
		"drain-timeout": o.drainTimeout, "default-timeout": o.defaultTimeout, "write-timeout": o.writeTimeout,
		"join-timeout": o.joinTimeout, "frame-read-timeout": o.frameReadTimeout,
	} {
		if d < 0 {
			return server.Config{}, nil, usagef("--%s cannot be negative", name)
		}
	}
	for name, n := range map[string]int{
		"max-connections": o.maxConnections, "max-in-flight-per-client": o.maxInFlightPerClient,
		"max-queued-requests-per-channel": o.maxQueuedRequestsPerChannel, "max-gather-members": o.maxGatherMembers,
	} {
		if n < 0 {
			return server.Config{}, nil, usagef("--%s cannot be negative", name)
		}
	}
	if err := o.checkAddresses(); err != nil {
		return server.Config{}, nil, err
	}
	if o.maxHeaderBytes > server.MaxHeaderBytesLimit {
		return server.Config{}, nil, usagef("--max-header-bytes %s: at most %s", formatBytes(int64(o.maxHeaderBytes)), formatBytes(server.MaxHeaderBytesLimit))
	}
	if o.streamWindow < server.MinStreamWindow {
		return server.Config{}, nil, usagef("--stream-window %s: the smallest window is %s", formatBytes(int64(o.streamWindow)), formatBytes(server.MinStreamWindow))
	}
	if o.maxMemory != 0 && o.maxMemory < minMaxMemory {
		return server.Config{}, nil, usagef("--max-memory %s: the smallest budget is %s", formatBytes(int64(o.maxMemory)), formatBytes(minMaxMemory))
	}
	cfg := server.Config{
		DefaultTimeout:              o.defaultTimeout,
		MaxMessageBytes:             int64(o.maxMessageBytes),
		MaxHeaderBytes:              int(o.maxHeaderBytes),
		MaxChannelQueueBytes:        int64(o.maxChannelQueueBytes),
		WriteTimeout:                o.writeTimeout,
		JoinTimeout:                 o.joinTimeout,
		FrameReadTimeout:            o.frameReadTimeout,
		PingInterval:                o.pingInterval,
		MaxConnections:              o.maxConnections,
		MaxInFlightPerClient:        o.maxInFlightPerClient,
		MaxQueuedRequestsPerChannel: o.maxQueuedRequestsPerChannel,
		MaxGatherMembers:            o.maxGatherMembers,
		MaxMemory:                   int64(o.maxMemory),
		StreamWindow:                int(o.streamWindow),
		WebSocketOrigins:            o.wsOrigins,
		Logger:                      log,
	}
	if len(o.wsOrigins) > 0 && o.websocket == "" {
		return cfg, nil, usagef("--websocket-origins needs --websocket")
	}
	if o.metricsChannels < 0 {
		return cfg, nil, usagef("--metrics-channels cannot be negative")
	}
	files, err := newReloadable(o.tokens, o.tlsCert, o.tlsKey)
	if err != nil {
		return cfg, nil, err
	}
	cfg.TLSConfig = files.tlsConfig()
	if o.clusterName != "" {
		node := o.node
		if node == "" {
			// The host and port, as one NATS subject token.
			host, _ := os.Hostname()
			_, port, _ := net.SplitHostPort(o.addr)
			node = strings.NewReplacer(".", "-", ":", "-", " ", "-").Replace(host + "-" + port)
		}
		if err := o.clusterSecurity.check(o.natsURL != "", o.clusterDirect != ""); err != nil {
			return cfg, nil, err
		}
		ccfg := cluster.Config{Name: o.clusterName, Node: node, Listen: o.clusterListen,
			Routes: append([]string(nil), o.routes...), NATSURL: o.natsURL, DirectListen: o.clusterDirect, Logger: log}
		if err := o.clusterSecurity.apply(&ccfg); err != nil {
			return cfg, nil, err
		}
		c, err := cluster.New(ccfg)
		if err != nil {
			return cfg, nil, err
		}
		cfg.Cluster = c // the server closes it
		log.Info("cluster", "name", o.clusterName, "node", node, "listen", c.RouteURL(), "routes", strings.Join(o.routes, ","),
			"nats", o.natsURL, "direct", o.clusterDirect, "security", o.clusterSecurity.describe())
	}
	if o.tokens != "" {
		// The server logs each refusal, rate-limited, with its remote
		// address and channel name.
		cfg.Authenticate = files.authenticate
		cfg.ChannelName = files.name
	}
	return cfg, files, nil
}

// newLogger returns the slog logger --log-format and --log-level ask for,
// writing to w.
func (o *serveOptions) newLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, usagef("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", o.logFormat)
}

// run serves until a signal, then drains.
func (o *serveOptions) run(s *streams) error {
	log, err := o.newLogger(s.err)
	if err != nil {
		return err
	}
	cfg, files, err := o.config(log)
	if err != nil {
		return err
	}
	// Listen to signals before saying where we listen: a signal sent by
	// someone who read that line must find the handler in place.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	ln, err := net.Listen("tcp", withDefaultPort(o.addr, defaultPort))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The budget counts what frames hold; the soft limit makes the
		// garbage collector keep the heap's headroom within reach of it.
		debug.SetMemoryLimit(int64(o.maxMemory) + softLimitHeadroom)
	}
	srv := server.New(cfg)
	var mon *monitor
	if o.monitor != "" {
		mln, err := net.Listen("tcp", monitorAddr(o.monitor))
		if err != nil {
			ln.Close()
			return fmt.Errorf("monitor: listen: %w", err)
		}
		mon = startMonitor(mln, srv, ln.Addr().String(), files, o.metricsChannels, log)
		fmt.Fprintf(s.out, "socketbus monitoring on http://%s\n", mln.Addr())
		log.Info("monitoring", "addr", mln.Addr().String())
	}
	var wsln net.Listener
	if o.websocket != "" {
		if wsln, err = net.Listen("tcp", o.websocket); err != nil {
			ln.Close()
			stopMonitor(mon, log)
			return fmt.Errorf("websocket: listen: %w", err)
		}
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	if wsln != nil {
		go func() { served <- srv.ServeWebSocket(wsln) }()
		scheme := "ws"
		if cfg.TLSConfig != nil {
			scheme = "wss"
		}
		fmt.Fprintf(s.out, "socketbus websocket on %s://%s/\n", scheme, wsln.Addr())
		log.Info("websocket", "addr", wsln.Addr().String(), "origins", strings.Join(o.wsOrigins, ","))
	}
	fmt.Fprintf(s.out, "socketbus listening on %s\n", ln.Addr())
	b := readBuildInfo()
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.TLSConfig != nil, "tokens", o.tokens != "",
		"version", b.version, "go_version", b.goVer)

	var sig os.Signal
	for sig == nil {
		select {
		case err := <-served:
			srv.Close()
			stopMonitor(mon, log)
			return fmt.Errorf("serve: %w", err)
		case <-hups:
			log.Info("reload: SIGHUP", "tokens", o.tokens, "tls_cert", o.tlsCert)
			if err := files.reload(log); err != nil {
				log.Error("reload failed; the settings that failed to load are unchanged", "err", err)
			} else {
				log.Info("reloaded")
			}
		case sig = <-sigs:
		}
	}

	if mon != nil {
		mon.draining.Store(true)
	}
	log.Info("shutting down", "signal", sig.String(), "in_flight", srv.Stats().InFlight, "drain_timeout", o.drainTimeout)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case sig := <-sigs:
			log.Error("second signal: exiting at once", "signal", sig.String())
			os.Exit(exitOther)
		case <-stopped:
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("drain timeout passed: requests still in flight were cut off", "err", err)
	}
	for range 1 + min(len(o.websocket), 1) {
		if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
			log.Warn("serve", "err", err)
		}
	}
	stopMonitor(mon, log)
	log.Info("stopped")
	return nil
}

// monitorAddr returns where --monitor listens: an address without a host
// (":7511", or "7511") listens on loopback, since the endpoint has no
// authentication; 0.0.0.0:7511 listens on every interface.
func monitorAddr(flag string) string {
	if !strings.Contains(flag, ":") {
		flag = ":" + flag
	}
	if host, port, err := net.SplitHostPort(flag); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return flag
}

// stopMonitor shuts the monitoring endpoint down, if there is one.
func stopMonitor(mon *monitor, log *slog.Logger) {
	if mon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := mon.shutdown(ctx); err != nil {
		log.Warn("stopping the monitor", "err", err)
	}
}
