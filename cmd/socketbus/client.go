package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/pflag"

	"github.com/socketbus/socketbus"
)

// defaultServer is where client commands look for a server, and where
// serve listens, unless told otherwise.
const defaultServer = "127.0.0.1:" + defaultPort

// clientFlags are the flags every client command shares: where the server
// is and how to join it.
type clientFlags struct {
	servers        []string // the first is dialled first; the others are tried after it and on reconnects
	server         string   // the first of servers, with its default port, once dial has run
	token          string
	tls            bool
	tlsCA          string
	tlsInsecure    bool
	connectTimeout time.Duration

	// events, when set, gets a line for every change of the connection
	// (lost, draining, back, gave up), prefixed with the command's name.
	events     io.Writer
	eventsName string
	// waitFor, when positive, makes dial try again, with backoff, while
	// the server cannot be reached, for up to that long in all.
	waitFor time.Duration
	// waited says dial had to wait for the server: its other clients may
	// still be reconnecting.
	waited bool
	// waitNotice, when set, is told once that dial is waiting.
	waitNotice io.Writer

	// channelName, set by a command whose channel was given by name, is
	// sent in the join so that the server can show it. It is sent only
	// without a token: a server with --tokens knows its channels' names,
	// and one that predates names in the join would take the name for
	// part of the token (PROTOCOL.md §7).
	channelName string
}

// register adds the flags to fs; the environment can set the connection
// flags (SOCKETBUS_SERVER, SOCKETBUS_TOKEN...), which keeps a token off the
// command line.
func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.servers, "server", []string{defaultServer}, "server `addresses` host:port, comma-separated or repeated: the first is tried first, the others after it and when reconnecting (the port defaults to "+defaultPort+")")
	fs.StringVar(&f.token, "token", "", "token to present when joining (see serve --tokens)")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS, verifying the server against the system's roots")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "connect with TLS, verifying the server against the CA certificates in PEM `file`")
	fs.BoolVar(&f.tlsInsecure, "tls-insecure", false, "connect with TLS without verifying the server's certificate (testing only)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 10*time.Second, "how long connecting and joining may take")
	bindEnv(fs, "server", "token", "tls", "tls-ca", "tls-insecure")
}

// dial connects to the server and joins channel. Its errors are
// *dialError, so that a server that cannot be reached has its own exit
// status.
func (f *clientFlags) dial(ctx context.Context, channel socketbus.ID) (*socketbus.Client, error) {
	servers, err := serverList(f.servers)
	if err != nil {
		return nil, err
	}
	f.server = servers[0]
	var opts []socketbus.DialOption
	if len(servers) > 1 {
		opts = append(opts, socketbus.WithServers(servers[1:]...))
	}
	tlsCfg, err := clientTLS(f.server, f.tls, f.tlsCA, f.tlsInsecure)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, socketbus.WithTLS(tlsCfg))
	}
	if f.token != "" {
		opts = append(opts, socketbus.WithToken(f.token))
	} else if f.channelName != "" {
		opts = append(opts, socketbus.WithChannelName(f.channelName))
	}
	if f.events != nil {
		w, name, addr := f.events, f.eventsName, f.server
		opts = append(opts, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
			fmt.Fprintln(w, connectionLine(name, addr, ev))
		}))
	}
	timeout := f.connectTimeout
	if f.waitFor > 0 {
		timeout = f.waitFor // waiting is bounded by the command's own time, not the connect timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	delay := 100 * time.Millisecond
	var last error // the last attempt that failed before the deadline
	for {
		c, err := socketbus.Dial(ctx, f.server, channel, opts...)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil && last != nil {
			// The deadline cut this attempt short ("i/o timeout" on a
			// busy machine): what the attempts before it found says more
			// ("connection refused").
			err = last
		}
		last = err
		if f.waitFor <= 0 || !unreachable(err) || ctx.Err() != nil {
			return nil, &dialError{&hintError{addr: f.server, hint: dialHint(err, tlsCfg != nil), err: err}}
		}
		if !f.waited && f.waitNotice != nil {
			fmt.Fprintf(f.waitNotice, "socketbus send: the server at %s does not answer; waiting for it for up to %s\n", f.server, f.waitFor)
		}
		f.waited = true
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &dialError{&hintError{addr: f.server, hint: dialHint(err, tlsCfg != nil), err: err}}
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// serverList checks the --server addresses and gives each its default
// port; an empty list or an empty address is a usage error.
func serverList(addrs []string) ([]string, error) {
	var out []string
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, usagef("--server: an empty address in %q", strings.Join(addrs, ","))
		}
		a = withDefaultPort(a, defaultPort)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, usagef("--server %q: %w", a, err)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, usagef("--server: no address given")
	}
	return out, nil
}

// unreachable reports whether a Dial error means nobody answered (worth
// waiting for the server), rather than a refusal.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// connectionLine describes a connection event for the command's log.
func connectionLine(name, addr string, ev socketbus.ConnectionEvent) string {
	switch ev.State {
	case socketbus.ConnectionLost:
		return fmt.Sprintf("%s: lost the server at %s (%s); reconnecting", name, ev.Addr, reasonLine(ev.Err))
	case socketbus.ConnectionDraining:
		return fmt.Sprintf("%s: the server at %s is shutting down; new requests wait for the next connection", name, ev.Addr)
	case socketbus.ConnectionRestored:
		return fmt.Sprintf("%s: back on %s after %d attempt(s)", name, ev.Addr, ev.Attempt)
	case socketbus.ConnectionGaveUp:
		return fmt.Sprintf("%s: gave up on %s: %s", name, addr, reasonLine(ev.Err))
	}
	return fmt.Sprintf("%s: connection %s", name, ev.State)
}

// channelFlags choose a channel by name (--channel) or by ID
// (--channel-id).
type channelFlags struct {
	name string
	id   string
}

// register adds the flags to fs, one of which the command will need.
func (f *channelFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.name, "channel", "c", "", "channel `name` (mapped to its ID with ChannelFromName)")
	fs.StringVar(&f.id, "channel-id", "", "channel `UUID`, for channels named by ID")
}

// resolve returns the channel's ID and how to name it in messages.
func (f *channelFlags) resolve() (socketbus.ID, string, error) {
	switch {
	case f.name != "" && f.id != "":
		return socketbus.ID{}, "", usagef("give --channel or --channel-id, not both")
	case f.name != "":
		return socketbus.ChannelFromName(f.name), "channel " + strconv.Quote(f.name), nil
	case f.id != "":
		id, err := uuid.Parse(f.id)
		if err != nil {
			return socketbus.ID{}, "", usagef("--channel-id %q: %w", f.id, err)
		}
		return id, "channel " + id.String(), nil
	}
	return socketbus.ID{}, "", usagef("a channel is needed: give --channel NAME or --channel-id UUID")
}
