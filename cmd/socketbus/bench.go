package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/socketbus/socketbus"
)

// benchOptions are bench's flags.
type benchOptions struct {
	client     clientFlags
	channel    string
	workloads  string
	duration   time.Duration
	count      int
	largeCount int
	largeSize  byteSize
	requesters int
	responders int
	progress   bool
}

func newBenchCommand(s *streams) *cobra.Command {
	o := benchOptions{count: 20000, largeCount: 20, largeSize: 16 << 20}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running server with the lat, tput and large workloads",
		Long: `Measure a running server, as bench/ does in-process, with three workloads:

  lat    1 requester, 1 responder, 128-byte request and response, one at a
         time, --count times: the round-trip latency.
  tput   32 requesters, 4 responders (--requesters, --responders), 128 bytes
         each way, for --duration: requests per second.
  large  1 requester, 1 responder, 16 MiB each way (--large-size),
         --large-count times: MB/s.

Each requester and responder is a client of its own on a fresh channel;
requesters run closed loops (send, wait for the whole response, send again)
after a warm-up. A progress line goes to stderr when it is a terminal; the
results table goes to stdout.`,
		Example: `  # All three workloads against the local server:
  socketbus bench

  # A quick look at latency and throughput only:
  socketbus bench --workloads lat,tput --count 2000 --duration 2s

  # Large bodies only, 64 MiB each way:
  socketbus bench --workloads large --large-size 64MiB --large-count 5`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), s) }),
	}
	fs := cmd.Flags()
	o.client.register(fs)
	fs.StringVarP(&o.channel, "channel", "c", "", "channel `name` to use (default: a fresh one per run)")
	fs.StringVarP(&o.workloads, "workloads", "w", "lat,tput,large", "comma-separated workloads to run")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long tput runs")
	fs.IntVar(&o.count, "count", o.count, "timed round trips of lat")
	fs.IntVar(&o.largeCount, "large-count", o.largeCount, "timed round trips of large")
	fs.Var(&o.largeSize, "large-size", "request and response size of large")
	fs.IntVar(&o.requesters, "requesters", 32, "requesters of tput")
	fs.IntVar(&o.responders, "responders", 4, "responders of tput")
	fs.BoolVar(&o.progress, "progress", false, "show the progress line even when stderr is not a terminal")
	return cmd
}

// benchWorkload is one scenario; requesters make count round trips each,
// or as many as fit in duration when count is zero.
type benchWorkload struct {
	name                   string
	requesters, responders int
	size                   int // of the request and of the response
	warmup                 int // untimed round trips per requester
	count                  int
	duration               time.Duration
}

// benchResult is what one workload measured.
type benchResult struct {
	w         benchWorkload
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

// pick returns the workloads --workloads names, in its order.
func (o *benchOptions) pick() ([]benchWorkload, error) {
	if o.count < 1 || o.largeCount < 1 || o.requesters < 1 || o.responders < 1 || o.duration <= 0 || o.largeSize < 1 {
		return nil, usagef("--count, --large-count, --requesters, --responders, --duration and --large-size must be positive")
	}
	all := []benchWorkload{
		{name: "lat", requesters: 1, responders: 1, size: 128, warmup: 1000, count: o.count},
		{name: "tput", requesters: o.requesters, responders: o.responders, size: 128, warmup: 10, duration: o.duration},
		{name: "large", requesters: 1, responders: 1, size: int(o.largeSize), warmup: 1, count: o.largeCount},
	}
	var ws []benchWorkload
	for _, name := range strings.Split(o.workloads, ",") {
		i := slices.IndexFunc(all, func(w benchWorkload) bool { return w.name == strings.TrimSpace(name) })
		if i < 0 {
			return nil, usagef("--workloads: unknown workload %q (want lat, tput or large)", name)
		}
		ws = append(ws, all[i])
	}
	return ws, nil
}

// run runs the chosen workloads one after the other and prints the table.
func (o *benchOptions) run(ctx context.Context, s *streams) error {
	ws, err := o.pick()
	if err != nil {
		return err
	}
	name := o.channel
	if name == "" {
		name = "socketbus-bench-" + uuid.NewString()
	}
	channel := socketbus.ChannelFromName(name)
	var line io.Writer
	if o.progress || isTerminal(s.err) {
		line = s.err
	}
	var results []benchResult
	for _, w := range ws {
		res, err := o.runWorkload(ctx, channel, w, line)
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		results = append(results, res)
	}
	return writeBenchTable(s.out, results)
}

// runWorkload measures w: it joins the responders and requesters, warms up,
// then times the round trips. Progress goes to line, if not nil.
func (o *benchOptions) runWorkload(ctx context.Context, channel socketbus.ID, w benchWorkload, line io.Writer) (benchResult, error) {
	res := benchResult{w: w}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var clients []*socketbus.Client
	var responders sync.WaitGroup
	defer func() {
		cancel(nil)
		responders.Wait()
		for _, c := range clients {
			c.Close()
		}
	}()
	response := bytes.Repeat([]byte{'r'}, w.size)
	for range w.responders {
		c, err := o.client.dial(ctx, channel)
		if err != nil {
			return res, err
		}
		clients = append(clients, c)
		responders.Go(func() {
			if err := respondLoop(ctx, c, response); err != nil {
				cancel(fmt.Errorf("responder: %w", err))
			}
		})
	}
	requesters := make([]*socketbus.Client, 0, w.requesters)
	for range w.requesters {
		c, err := o.client.dial(ctx, channel)
		if err != nil {
			return res, err
		}
		clients = append(clients, c)
		requesters = append(requesters, c)
	}

	request := bytes.Repeat([]byte{'q'}, w.size)
	if _, err := drive(ctx, requesters, request, w.warmup, time.Time{}, nil); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	var done atomic.Int64
	stopLine := progressLine(line, w, &done)
	start := time.Now()
	var deadline time.Time
	if w.count == 0 {
		deadline = start.Add(w.duration)
	}
	lats, err := drive(ctx, requesters, request, w.count, deadline, &done)
	res.elapsed = time.Since(start)
	stopLine()
	if err != nil {
		return res, err
	}
	slices.Sort(lats)
	res.latencies = lats
	return res, nil
}

// respondLoop answers requests on c with response until ctx ends.
func respondLoop(ctx context.Context, c *socketbus.Client, response []byte) error {
	for {
		req, err := c.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			_ = req.Fail(err)
			return fmt.Errorf("reading a request: %w", err)
		}
		if err := req.Respond(bytes.NewReader(response)); err != nil && ctx.Err() == nil {
			return fmt.Errorf("responding: %w", err)
		}
	}
}

// drive runs each requester in a goroutine of its own, making count round
// trips, or as many as fit before deadline when count is zero, and returns
// every round trip's latency. The first failure stops them all.
func drive(ctx context.Context, requesters []*socketbus.Client, body []byte, count int, deadline time.Time, done *atomic.Int64) ([]time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	per := make([][]time.Duration, len(requesters))
	var wg sync.WaitGroup
	for i, c := range requesters {
		wg.Go(func() {
			lats := make([]time.Duration, 0, max(count, 1024))
			defer func() { per[i] = lats }()
			want := int64(len(body))
			for n := 0; count == 0 || n < count; n++ {
				t0 := time.Now()
				if count == 0 && !t0.Before(deadline) {
					return
				}
				var got byteCounter
				err := c.Send(ctx, bytes.NewReader(body), &got)
				if err == nil && int64(got) != want {
					err = fmt.Errorf("response of %d bytes, want %d", got, want)
				}
				if err != nil {
					cancel(err)
					return
				}
				lats = append(lats, time.Since(t0))
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return slices.Concat(per...), nil
}

// byteCounter is an io.Writer that counts what it is given and keeps none.
type byteCounter int64

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// progressLine rewrites one line on w with the workload's progress until
// the returned function is called, which clears it. A nil w shows nothing.
func progressLine(w io.Writer, wl benchWorkload, done *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	show := func() {
		n := done.Load()
		if wl.count > 0 {
			total := int64(wl.count * wl.requesters)
			fmt.Fprintf(w, "\r\033[K%s: %d/%d requests (%.0f%%)", wl.name, n, total, 100*float64(n)/float64(total))
			return
		}
		el := time.Since(start).Truncate(100 * time.Millisecond)
		fmt.Fprintf(w, "\r\033[K%s: %d requests, %v of %v", wl.name, n, min(el, wl.duration), wl.duration)
	}
	ticker := time.NewTicker(200 * time.Millisecond)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ticker.C:
				show()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		ticker.Stop()
		close(quit)
		<-finished
		fmt.Fprint(w, "\r\033[K")
	}
}

// writeBenchTable prints one line per workload.
func writeBenchTable(w io.Writer, results []benchResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tCLIENTS\tSIZE\tREQUESTS\tELAPSED\tREQ/S\tMB/S\tP50\tP99\tMAX")
	for _, r := range results {
		n := len(r.latencies)
		secs := r.elapsed.Seconds()
		mb := float64(n) * float64(2*r.w.size) / 1e6
		fmt.Fprintf(tw, "%s\t%d→%d\t%s\t%d\t%v\t%.0f\t%.1f\t%v\t%v\t%v\n",
			r.w.name, r.w.requesters, r.w.responders, formatBytes(int64(r.w.size)), n,
			r.elapsed.Round(time.Millisecond), float64(n)/secs, mb/secs,
			roundLatency(percentile(r.latencies, 0.50)), roundLatency(percentile(r.latencies, 0.99)),
			roundLatency(percentile(r.latencies, 1)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted by the
// nearest-rank method, or 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// roundLatency rounds d to three significant figures or so, for reading.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
