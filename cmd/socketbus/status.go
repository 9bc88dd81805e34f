package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// defaultMonitor is where status looks for a server's monitoring endpoint:
// serve's --monitor is off unless given, and this is the address the
// examples give it.
const defaultMonitor = "127.0.0.1:7511"

// statusOptions are status's flags.
type statusOptions struct {
	monitor string
	json    bool
	conns   bool
	sort    string
	limit   int
	timeout time.Duration
}

func newStatusCommand(s *streams) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a server is doing, from its monitoring endpoint",
		Long: `Show what a server is doing: its version and uptime, its channels (by
name when the server knows it: from serve --tokens, or given by a client
when joining) with clients, receivers waiting, queued requests and requests
in flight, and its totals, refusals and cuts, as a table. With --conns,
its open connections instead: remote address, client, channel, age, idle
time, requests in flight as sender and receiver, traffic and memory.

It asks the /status (or /connz) of the monitoring endpoint the server was
started with: a server has one only when started with serve --monitor ADDR,
and status looks for it at --monitor (default ` + defaultMonitor + `, the
address the examples give serve --monitor). --json prints that answer as it
is.`,
		Example: `  # A server started with a monitoring endpoint on the default address:
  socketbus serve --monitor 127.0.0.1:7511
  socketbus status

  # Its connections, the slowest readers first:
  socketbus status --conns --json | jq '.connections | sort_by(-.queued_bytes)'

  # Another server, as JSON for jq:
  socketbus status --monitor bus.example:7511 --json | jq .channels`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), s) }),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.monitor, "monitor", "m", defaultMonitor, "the server's monitoring endpoint, `host:port` or a URL")
	fs.BoolVar(&o.json, "json", false, "print the endpoint's JSON as it is")
	fs.BoolVar(&o.conns, "conns", false, "show the open connections (/connz) instead of the channels")
	fs.StringVar(&o.sort, "sort", "", "with --conns, order by `field`, largest first: age (the default, oldest first), idle, bytes_in, bytes_out, queued, memory, sending, receiving")
	fs.IntVar(&o.limit, "limit", 0, "with --conns, show only the first `n` connections (0: all)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the answer")
	bindEnv(fs, "monitor")
	return cmd
}

// run fetches /status (or /connz) and prints it.
func (o *statusOptions) run(ctx context.Context, s *streams) error {
	path := "/status"
	if o.conns {
		q := url.Values{}
		if o.sort != "" {
			q.Set("sort", o.sort)
		}
		if o.limit > 0 {
			q.Set("limit", strconv.Itoa(o.limit))
		}
		path = "/connz"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	} else if o.sort != "" || o.limit != 0 {
		return usagef("--sort and --limit go with --conns")
	}
	body, err := fetchStatus(ctx, o.monitor, path, o.timeout)
	if err != nil {
		return err
	}
	if o.json {
		_, err := s.out.Write(body)
		return err
	}
	if o.conns {
		var rep connzReport
		if err := json.Unmarshal(body, &rep); err != nil {
			return fmt.Errorf("decoding /connz: %w", err)
		}
		return writeConns(s.out, &rep)
	}
	var rep statusReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("decoding /status: %w", err)
	}
	return writeStatus(s.out, &rep)
}

// fetchStatus GETs path from the monitoring endpoint at monitor.
func fetchStatus(ctx context.Context, monitor, path string, timeout time.Duration) ([]byte, error) {
	base := monitor
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + path
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, usagef("--monitor %q: %w", monitor, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		hint := ""
		if errors.Is(err, syscall.ECONNREFUSED) {
			hint = "no monitoring endpoint listens there: start the server with one, serve --monitor " + defaultMonitor +
				", and give its address to status --monitor (or $SOCKETBUS_MONITOR)"
		}
		return nil, &dialError{&hintError{addr: monitor, hint: hint, err: err}}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body says why: a bus port's answer, say, points at --monitor.
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		if line != "" {
			return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, line)
		}
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// writeStatus prints rep as a table of channels followed by the totals.
func writeStatus(w io.Writer, rep *statusReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	bus := len(rep.NodeNames) > 1
	header := "CHANNEL\tCLIENTS\tWAITING\tQUEUED\tQUEUED BYTES\tIN FLIGHT"
	if bus {
		header += "\tON OTHER NODES"
	}
	fmt.Fprintln(tw, header)
	var clients, waiting, queued, inFlight int
	var queuedBytes int64
	for _, c := range rep.Channels {
		name := c.ID
		if c.Name != "" {
			name = c.Name + " (" + c.ID + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d", name, c.Clients, c.ReceiversWaiting, c.Queued, formatBytes(c.QueuedBytes), c.InFlight)
		if bus {
			fmt.Fprintf(tw, "\t%s", remoteClients(rep.NodeNames[1:], c.RemoteClients))
		}
		fmt.Fprintln(tw)
		clients += c.Clients
		waiting += c.ReceiversWaiting
		queued += c.Queued
		queuedBytes += c.QueuedBytes
		inFlight += c.InFlight
	}
	fmt.Fprintf(tw, "total (%d channels)\t%d\t%d\t%d\t%s\t%d\n", len(rep.Channels), clients, waiting, queued, formatBytes(queuedBytes), inFlight)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}

	state := "serving"
	if rep.Draining {
		state = "draining"
	}
	fmt.Fprintf(w, "\nserver %s: %d connections, %d requests in flight\n", state, rep.Connections, rep.InFlight)
	if bus {
		fmt.Fprintf(w, "bus: %d nodes: %s (this one), %s\n", len(rep.NodeNames), rep.NodeNames[0], strings.Join(rep.NodeNames[1:], ", "))
	} else if rep.Nodes > 1 {
		fmt.Fprintf(w, "bus: %d nodes\n", rep.Nodes)
	}
	if rep.Version != "" {
		fmt.Fprintf(w, "version %s (%s), up %s since %s\n", rep.Version, rep.GoVersion,
			(time.Duration(rep.UptimeSeconds) * time.Second).String(), rep.StartTime.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "requests started: %d\n", rep.RequestsStarted)
	outcomes := make([]string, 0, len(rep.Requests))
	for o := range rep.Requests {
		outcomes = append(outcomes, o)
	}
	slices.Sort(outcomes)
	parts := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%s %d", o, rep.Requests[o]))
	}
	fmt.Fprintf(w, "requests ended: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "gathers: %d, publishes: %d, their members: %s\n", rep.Gathers, rep.Publishes, counts(rep.GatherReplies))
	fmt.Fprintf(w, "traffic: in %s in %d frames, out %s in %d frames\n",
		formatBytes(rep.BytesIn), rep.FramesIn, formatBytes(rep.BytesOut), rep.FramesOut)
	fmt.Fprintf(w, "connections: %d accepted, %d joined\n", rep.Accepted, rep.Joined)
	fmt.Fprintf(w, "connections refused: %s\n", counts(rep.Refused))
	fmt.Fprintf(w, "connections cut: %s\n", counts(rep.Cut))
	if _, err := fmt.Fprintf(w, "memory: %s held, peak %s, limit %s\n",
		formatBytes(rep.MemoryBytes), formatBytes(rep.MemoryPeakBytes), formatBytes(rep.MemoryLimit)); err != nil || rep.LastReload == nil {
		return err
	}
	last := "ok"
	if rep.LastReload.Error != "" {
		last = "failed: " + rep.LastReload.Error
	}
	_, err := fmt.Fprintf(w, "reloads: %d (%d failed), last at %s: %s\n", rep.Reloads, rep.ReloadFailures, rep.LastReload.At.Format(time.RFC3339), last)
	return err
}

// counts renders a map of counts as "a 1, b 2", or "none".
func counts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// writeConns prints rep as a table of connections, oldest first.
func writeConns(w io.Writer, rep *connzReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REMOTE\tCLIENT\tCHANNEL\tTLS\tAGE\tIDLE\tSENDING\tRECEIVING\tSENT\tRECEIVED\tIN\tOUT\tQUEUED\tMEMORY")
	for _, c := range rep.Connections {
		if !c.Joined {
			fmt.Fprintf(tw, "%s\t(joining)\t\t%v\t%s\t\t\t\t\t\t\t\t\t\n", c.Remote, c.TLS, seconds(c.AgeSeconds))
			continue
		}
		channel := c.Channel
		if c.ChannelName != "" {
			channel = c.ChannelName
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", c.Remote, c.Client, channel, c.TLS,
			seconds(c.AgeSeconds), seconds(c.IdleSeconds), c.Sending, c.Receiving, c.Sent, c.Received,
			formatBytes(c.BytesIn), formatBytes(c.BytesOut), formatBytes(c.QueuedBytes), formatBytes(c.MemoryBytes))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	if rep.Total > len(rep.Connections) {
		_, err := fmt.Fprintf(w, "%d of %d connections\n", len(rep.Connections), rep.Total)
		return err
	}
	_, err := fmt.Fprintf(w, "%d connections\n", len(rep.Connections))
	return err
}

// seconds renders a number of seconds as a short duration.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// remoteClients renders a channel's clients on the other nodes, in the
// order of nodes: "n2 1, n3 0".
func remoteClients(nodes []string, members map[string]int) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s %d", n, members[n]))
	}
	return strings.Join(parts, ", ")
}
