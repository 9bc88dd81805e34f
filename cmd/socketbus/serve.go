package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/socketbus/socketbus"
)

// serveOptions are serve's flags.
type serveOptions struct {
	addr         string
	monitor      string
	drainTimeout time.Duration
	logFormat    string
	logLevel     string
	tlsCert      string
	tlsKey       string
	tokens       string

	// ServerConfig's fields, one flag each.
	defaultTimeout              time.Duration
	maxMessageBytes             byteSize
	maxChannelQueueBytes        byteSize
	maxMemory                   byteSize
	writeTimeout                time.Duration
	joinTimeout                 time.Duration
	frameReadTimeout            time.Duration
	pingInterval                time.Duration
	maxConnections              int
	maxInFlightPerClient        int
	maxQueuedRequestsPerChannel int
}

func newServeCommand(s *streams) *cobra.Command {
	o := serveOptions{maxChannelQueueBytes: socketbus.DefaultMaxChannelQueueBytes, maxMemory: socketbus.DefaultMaxMemory}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a socketbus server",
		Long: `Run a socketbus server until SIGINT or SIGTERM.

On start it prints where it listens, then logs with log/slog to stderr.
On SIGINT or SIGTERM it stops taking connections and requests, fails the
queued requests, lets the requests receivers have taken finish for up to
--drain-timeout, then exits 0. A second signal exits at once, with status 1.

Every flag can also be set by an environment variable, named after the flag:
--max-message-bytes is SOCKETBUS_MAX_MESSAGE_BYTES. A flag on the command
line wins over the environment. Sizes take binary suffixes (64KiB, 16MiB).

With --monitor ADDR, an HTTP endpoint serves /metrics (Prometheus), /healthz
(200, or 503 while draining) and /status (JSON, what "socketbus status"
shows). Each port tells a client of the other what it is: an HTTP request
on the bus port gets a 400 saying so, and a socketbus client on the monitor
port a 400 naming the bus address, which send and receive print.

With --tls-cert and --tls-key, a client that joins without TLS is refused
with a plain error saying the server requires TLS (--tls).

With --tokens FILE, only clients presenting an allowed token may join a
channel. The file has one "channel-name token" pair per line; a channel may
have several lines; blank lines and lines starting with # are ignored. A
channel not in the file admits no one.`,
		Example: `  # Listen on the default address, 127.0.0.1:7411:
  socketbus serve

  # Listen on every interface, with metrics on port 7412 and JSON logs:
  socketbus serve --addr :7411 --monitor 127.0.0.1:7412 --log-format json

  # TLS, tokens and limits, from the environment:
  SOCKETBUS_TLS_CERT=bus.crt SOCKETBUS_TLS_KEY=bus.key SOCKETBUS_TOKENS=tokens.txt \
  SOCKETBUS_MAX_MESSAGE_BYTES=16MiB socketbus serve`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(s) }),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.addr, "addr", defaultServer, "address to listen on, `host:port` (the port defaults to "+defaultPort+")")
	fs.StringVar(&o.monitor, "monitor", "", "serve /metrics, /healthz and /status over HTTP on `host:port` (off when empty)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT or SIGTERM, how long requests in flight may take to finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "speak TLS with the certificate in PEM `file` (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "the TLS certificate's private key, a PEM `file`")
	fs.StringVar(&o.tokens, "tokens", "", "admit to each channel only the tokens listed in `file`")

	fs.DurationVar(&o.defaultTimeout, "default-timeout", socketbus.DefaultRequestTimeout, "timeout of requests sent without one")
	fs.Var(&o.maxMessageBytes, "max-message-bytes", "largest request or response body (0: no limit)")
	fs.Var(&o.maxChannelQueueBytes, "max-channel-queue-bytes", "request-body bytes held for one channel's queued requests before senders wait")
	fs.Var(&o.maxMemory, "max-memory", "memory the server may hold for frames, all connections together; also sets the Go runtime's soft memory limit to this plus 64MiB unless GOMEMLIMIT is set")
	fs.DurationVar(&o.writeTimeout, "write-timeout", socketbus.DefaultWriteTimeout, "how long a connection may accept no bytes before it is cut off")
	fs.DurationVar(&o.joinTimeout, "join-timeout", socketbus.DefaultJoinTimeout, "how long a new connection may take to finish TLS and join")
	fs.DurationVar(&o.frameReadTimeout, "frame-read-timeout", socketbus.DefaultFrameReadTimeout, "how long a frame may take to arrive once it has begun")
	fs.DurationVar(&o.pingInterval, "ping-interval", socketbus.DefaultPingInterval, "ping a quiet connection this often; two unanswered pings close it (negative: off)")
	fs.IntVar(&o.maxConnections, "max-connections", socketbus.DefaultMaxConnections, "most open connections")
	fs.IntVar(&o.maxInFlightPerClient, "max-in-flight-per-client", socketbus.DefaultMaxInFlightPerClient, "most requests one client may have open as a sender")
	fs.IntVar(&o.maxQueuedRequestsPerChannel, "max-queued-requests-per-channel", socketbus.DefaultMaxQueuedRequests, "most requests waiting for a receiver on one channel")
	bindEnv(fs)
	return cmd
}

// softLimitHeadroom is what serve lets the Go heap grow beyond --max-memory
// before the garbage collector works harder: the runtime's own memory, and
// garbage not yet collected.
const softLimitHeadroom = 64 << 20

// config checks the options and turns them into a ServerConfig; tokens is
// the table read from --tokens, or nil.
func (o *serveOptions) config(log *slog.Logger) (socketbus.ServerConfig, *tokenTable, error) {
	for name, d := range map[string]time.Duration{
		"drain-timeout": o.drainTimeout, "default-timeout": o.defaultTimeout, "write-timeout": o.writeTimeout,
		"join-timeout": o.joinTimeout, "frame-read-timeout": o.frameReadTimeout,
	} {
		if d < 0 {
			return socketbus.ServerConfig{}, nil, usagef("--%s cannot be negative", name)
		}
	}
	for name, n := range map[string]int{
		"max-connections": o.maxConnections, "max-in-flight-per-client": o.maxInFlightPerClient,
		"max-queued-requests-per-channel": o.maxQueuedRequestsPerChannel,
	} {
		if n < 0 {
			return socketbus.ServerConfig{}, nil, usagef("--%s cannot be negative", name)
		}
	}
	cfg := socketbus.ServerConfig{
		DefaultTimeout:              o.defaultTimeout,
		MaxMessageBytes:             int64(o.maxMessageBytes),
		MaxChannelQueueBytes:        int64(o.maxChannelQueueBytes),
		WriteTimeout:                o.writeTimeout,
		JoinTimeout:                 o.joinTimeout,
		FrameReadTimeout:            o.frameReadTimeout,
		PingInterval:                o.pingInterval,
		MaxConnections:              o.maxConnections,
		MaxInFlightPerClient:        o.maxInFlightPerClient,
		MaxQueuedRequestsPerChannel: o.maxQueuedRequestsPerChannel,
		MaxMemory:                   int64(o.maxMemory),
	}
	var err error
	if cfg.TLSConfig, err = serverTLS(o.tlsCert, o.tlsKey); err != nil {
		return cfg, nil, err
	}
	var tokens *tokenTable
	if o.tokens != "" {
		if tokens, err = loadTokens(o.tokens); err != nil {
			return cfg, nil, err
		}
		cfg.Authenticate = func(client, channel socketbus.ID, token string) error {
			err := tokens.authenticate(client, channel, token)
			if err != nil {
				log.Warn("join refused", "client", client, "channel", channel, "channel_name", tokens.name(channel), "err", err)
			}
			return err
		}
	}
	return cfg, tokens, nil
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
	cfg, tokens, err := o.config(log)
	if err != nil {
		return err
	}
	// Listen to signals before saying where we listen: a signal sent by
	// someone who read that line must find the handler in place.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ln, err := net.Listen("tcp", withDefaultPort(o.addr, defaultPort))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The budget counts what frames hold; the soft limit makes the
		// garbage collector keep the heap's headroom within reach of it.
		debug.SetMemoryLimit(int64(o.maxMemory) + softLimitHeadroom)
	}
	srv := socketbus.NewServer(cfg)
	var mon *monitor
	if o.monitor != "" {
		mln, err := net.Listen("tcp", o.monitor)
		if err != nil {
			ln.Close()
			return fmt.Errorf("monitor: listen: %w", err)
		}
		mon = startMonitor(mln, srv, ln.Addr().String(), tokens.name, log)
		fmt.Fprintf(s.out, "socketbus monitoring on http://%s\n", mln.Addr())
		log.Info("monitoring", "addr", mln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(s.out, "socketbus listening on %s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "tls", cfg.TLSConfig != nil, "tokens", tokens != nil)

	var sig os.Signal
	select {
	case err := <-served:
		srv.Close()
		stopMonitor(mon, log)
		return fmt.Errorf("serve: %w", err)
	case sig = <-sigs:
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
	if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
		log.Warn("serve", "err", err)
	}
	stopMonitor(mon, log)
	log.Info("stopped")
	return nil
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
