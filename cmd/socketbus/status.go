package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// defaultMonitor is where status looks for a server's monitoring endpoint:
// serve's --monitor is off unless given, and this is the address the
// examples give it.
const defaultMonitor = "127.0.0.1:7412"

// statusOptions are status's flags.
type statusOptions struct {
	monitor string
	json    bool
	timeout time.Duration
}

func newStatusCommand(s *streams) *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a server is doing, from its monitoring endpoint",
		Long: `Show what a server is doing: its channels (clients, receivers waiting,
queued requests, requests in flight) and its totals, as a table.

It asks the /status of the monitoring endpoint the server was started with:
a server has one only when started with serve --monitor ADDR, and status
looks for it at --monitor (default ` + defaultMonitor + `, the address the
examples give serve --monitor). --json prints that answer as it is.`,
		Example: `  # A server started with a monitoring endpoint on the default address:
  socketbus serve --monitor 127.0.0.1:7412
  socketbus status

  # Another server, as JSON for jq:
  socketbus status --monitor bus.example:7412 --json | jq .channels`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), s) }),
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.monitor, "monitor", "m", defaultMonitor, "the server's monitoring endpoint, `host:port` or a URL")
	fs.BoolVar(&o.json, "json", false, "print the endpoint's JSON as it is")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the answer")
	bindEnv(fs, "monitor")
	return cmd
}

// run fetches /status and prints it.
func (o *statusOptions) run(ctx context.Context, s *streams) error {
	body, err := fetchStatus(ctx, o.monitor, o.timeout)
	if err != nil {
		return err
	}
	if o.json {
		_, err := s.out.Write(body)
		return err
	}
	var rep statusReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("decoding /status: %w", err)
	}
	return writeStatus(s.out, &rep)
}

// fetchStatus GETs /status from the monitoring endpoint at monitor.
func fetchStatus(ctx context.Context, monitor string, timeout time.Duration) ([]byte, error) {
	base := monitor
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimSuffix(base, "/") + "/status"
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
	fmt.Fprintln(tw, "CHANNEL\tCLIENTS\tWAITING\tQUEUED\tQUEUED BYTES\tIN FLIGHT")
	var clients, waiting, queued, inFlight int
	var queuedBytes int64
	for _, c := range rep.Channels {
		name := c.ID
		if c.Name != "" {
			name = c.Name + " (" + c.ID + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\n", name, c.Clients, c.ReceiversWaiting, c.Queued, formatBytes(c.QueuedBytes), c.InFlight)
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
	_, err := fmt.Fprintf(w, "traffic: in %s in %d frames, out %s in %d frames\n",
		formatBytes(rep.BytesIn), rep.FramesIn, formatBytes(rep.BytesOut), rep.FramesOut)
	return err
}
