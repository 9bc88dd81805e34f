// Command bench measures socketbus side by side with NATS and a bare TCP
// relay on the same machine, in the same process: each workload runs on
// each system in turn (socketbus, NATS, relay), for several rounds, and
// the table reports the median of each figure and the ratios of socketbus
// to the others. The system socketbus-cluster, a bus of three nodes in
// this process with every request crossing two of them, and NATS-cluster,
// three routed nats-servers with every request crossing the same way, run
// when -systems names them (and in -smoke runs); the table then also
// compares the bus with single-node socketbus and with NATS's cluster.
// The fan-out workloads gather and gather-large (gather.go) run when
// -workloads names them (and in -smoke runs), on every system that can
// reach all responders at once, and on socketbus-calls, which reaches them
// with one Call each.
//
//	cd bench && go run -mod=mod .
//	cd bench && go run -mod=mod . -systems socketbus,NATS,socketbus-cluster,NATS-cluster
//	cd bench && go run -mod=mod . -headers 3
//
// interleave.sh compares builds of the bench (old and new code), or one
// build with different flags, round by round in one run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := benchMain(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	smoke        bool
	rounds       int
	workloads    string
	systems      string
	duration     time.Duration
	headers      int
	md           string
	targets      bool
	cpuProfile   string
	memProfile   string
	blockProfile string
	trace        string
	// scaleDuration is how long each throughput point of scale-conns and
	// scale-channels runs.
	scaleDuration time.Duration
	// serveChild, when set, makes this process a scaling workload's
	// server (scale_child.go), not a bench.
	serveChild string
}

// defaultSystems are the systems a run measures unless -systems says
// otherwise. The cluster is not among them: its comparison is a run of
// its own (BENCHMARKS.md), and it would add a third to the default run.
// socketbus-calls runs only the fan-out workloads, which are not among
// defaultWorkloads.
const defaultSystems = "socketbus,NATS,relay," + callsName

// defaultWorkloads are the workloads a run measures unless -workloads says
// otherwise: the fan-out ones are a comparison of their own.
const defaultWorkloads = "lat,tput,large,fanin"

func parseFlags() options {
	var o options
	flag.BoolVar(&o.smoke, "smoke", false, "tiny counts and one round: a few seconds in all, for CI")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of every workload on every system")
	flag.StringVar(&o.workloads, "workloads", defaultWorkloads, "comma-separated workloads to run: lat, tput, large, fanin, gather, gather-large, and the scaling ones, "+strings.Join(scaleNames, ", ")+" (-smoke adds all but the first four, tiny, unless -workloads is given)")
	flag.DurationVar(&o.scaleDuration, "scale-duration", 2*time.Second, "how long each point of scale-conns and scale-channels runs")
	flag.StringVar(&o.serveChild, "serve-child", "", "internal: serve socketbus or NATS for a parent bench's scaling workloads, commanded on stdin")
	flag.StringVar(&o.systems, "systems", defaultSystems, "comma-separated systems to run: socketbus, NATS, relay, "+callsName+" (fan-out workloads only), "+clusterName+", "+natsClusterName+" (-smoke adds the two clusters unless -systems is given)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long the tput and fanin workloads run")
	flag.BoolVar(&clusterDirect, "cluster-direct", true, "socketbus-cluster: nodes carry their links on direct connections (cluster.Config.DirectListen), NATS only for membership and state; -cluster-direct=false carries them on NATS")
	flag.IntVar(&o.headers, "headers", 0, "small headers on every request (a trace context, a tenant, a request ID, then numbered ones); socketbus and NATS carry them, the relay does not")
	flag.StringVar(&o.md, "md", "", "also write the table as markdown to this file")
	flag.BoolVar(&o.targets, "targets", false, "add the issue's target and verdict columns, for tracking the performance work")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the whole run to this file")
	flag.StringVar(&o.blockProfile, "blockprofile", "", "write a blocking profile of the whole run to this file")
	flag.StringVar(&o.trace, "trace", "", "write an execution trace of the whole run to this file (go tool trace): which goroutine a workload waits on")
	flag.Parse()
	if o.smoke {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = 250 * time.Millisecond
		}
		if !set["systems"] {
			o.systems += "," + clusterName + "," + natsClusterName // so that CI starts and stops both clusters too
		}
		if !set["scale-duration"] {
			o.scaleDuration = 100 * time.Millisecond
		}
		if !set["workloads"] {
			o.workloads += ",gather,gather-large"              // tiny in a smoke run: CI runs Gather too
			o.workloads += "," + strings.Join(scaleNames, ",") // tiny counts: about 1.5 s in all
		}
	}
	return o
}

func benchMain() error {
	o := parseFlags()
	if o.serveChild != "" {
		return runServerChild(o.serveChild)
	}
	if o.rounds < 1 {
		return fmt.Errorf("-rounds %d: want at least 1", o.rounds)
	}
	if o.headers < 0 {
		return fmt.Errorf("-headers %d: want 0 or more", o.headers)
	}
	softFiles, hardFiles := raiseFileLimit()
	list, scaleList := splitScale(o.workloads)
	var ws []workload
	var systems []system
	if list != "" {
		var err error
		ws, err = pick(workloads(o.duration, o.smoke, o.headers), list, func(w workload) string { return w.name })
		if err != nil {
			return err
		}
		all := []system{socketbusSystem{}, natsSystem{}, relaySystem{}, callsSystem{}, clusterSystem{}, natsClusterSystem{}}
		systems, err = pick(all, o.systems, system.Name)
		if err != nil {
			return err
		}
	}
	var sws []scaleWorkload
	var ssys []scaleSystem
	if scaleList != "" {
		var err error
		sws, err = pick(scaleWorkloads(defaultScaleSizes(o.smoke, o.scaleDuration, hardFiles)), scaleList, func(w scaleWorkload) string { return w.name })
		if err != nil {
			return err
		}
		if ssys = scaleSystemsIn(o.systems); len(ssys) == 0 {
			return fmt.Errorf("-systems %q: the scaling workloads run socketbus and NATS, and it names neither", o.systems)
		}
	}
	loadBefore := loadAverage()
	stop, err := startProfiles(o)
	if err != nil {
		return err
	}
	var rows []row
	var scaleRows []scaleRow
	if len(ws) > 0 {
		rows, err = measure(ws, systems, o.rounds)
	}
	if err == nil && len(sws) > 0 {
		scaleRows, err = measureScale(sws, ssys, o.rounds)
	}
	if perr := stop(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}

	names := ranOn(rows, systems)
	caption := fmt.Sprintf("%d round(s), median of each figure; %d CPUs, %s %s/%s; load average %s before, %s after",
		o.rounds, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadBefore, loadAverage())
	if o.headers > 0 {
		caption = fmt.Sprintf("%d header(s) on every request (not on the relay's). ", o.headers) + caption
	}
	if len(sws) > 0 {
		caption += fmt.Sprintf("; open files: soft limit %d, hard %d", softFiles, hardFiles)
	}
	if o.smoke {
		caption = "SMOKE RUN: tiny counts, the figures mean nothing. " + caption
	}
	scaleNames := make([]string, len(ssys))
	for i, s := range ssys {
		scaleNames[i] = s.Name()
	}
	fmt.Printf("\n%s\n\n", caption)
	if len(rows) > 0 {
		if err := writeText(os.Stdout, rows, names, o.targets); err != nil {
			return err
		}
	}
	if len(scaleRows) > 0 {
		fmt.Println()
		if err := writeScaleText(os.Stdout, scaleRows, scaleNames); err != nil {
			return err
		}
	}
	if o.md != "" {
		f, err := os.Create(o.md)
		if err != nil {
			return fmt.Errorf("markdown: %w", err)
		}
		var werr error
		if len(rows) > 0 {
			werr = writeMarkdown(f, caption, rows, names, o.targets)
		} else {
			_, werr = io.WriteString(f, caption+"\n")
		}
		if werr == nil && len(scaleRows) > 0 {
			if _, werr = io.WriteString(f, "\n"); werr == nil {
				werr = writeScaleMarkdown(f, scaleRows, scaleNames)
			}
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("markdown: %w", werr)
		}
	}
	return nil
}

// pick returns the items of all named in the comma-separated list, in the
// order of all; names match case-insensitively.
func pick[T any](all []T, list string, name func(T) string) ([]T, error) {
	want := map[string]bool{}
	for n := range strings.SplitSeq(list, ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			want[n] = true
		}
	}
	var out []T
	for _, x := range all {
		if want[strings.ToLower(name(x))] {
			out = append(out, x)
			delete(want, strings.ToLower(name(x)))
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown name(s) %s in %q", strings.Join(unknown, ", "), list)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nothing selected by %q", list)
	}
	return out, nil
}

// measure runs every workload, round after round, on each system in turn,
// and returns the median of every figure.
func measure(ws []workload, systems []system, rounds int) ([]row, error) {
	width := 0
	for _, sys := range systems {
		width = max(width, len(sys.Name()))
	}
	var rows []row
	for _, w := range ws {
		results := map[string][]result{}
		for round := 1; round <= rounds; round++ {
			for _, sys := range systems {
				if !accepts(sys, w) {
					continue
				}
				res, err := runWatched(sys, w)
				if err != nil {
					return nil, fmt.Errorf("%s on %s, round %d: %w", w.name, sys.Name(), round, err)
				}
				results[sys.Name()] = append(results[sys.Name()], res)
				fmt.Fprintf(os.Stderr, "%-5s round %d/%d %-*s %s\n", w.name, round, rounds, width, sys.Name(), describe(w, res))
			}
		}
		for _, m := range w.metrics {
			r := row{workload: w.name, metric: m, values: map[string]float64{}}
			for name, rs := range results {
				vs := make([]float64, len(rs))
				for i, res := range rs {
					vs[i] = m.value(res)
				}
				r.values[name] = median(vs)
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// ranOn returns the names of the systems that have a figure in rows, in
// the order of systems: the table's columns.
func ranOn(rows []row, systems []system) []string {
	var names []string
	for _, s := range systems {
		for _, r := range rows {
			if _, ok := r.values[s.Name()]; ok {
				names = append(names, s.Name())
				break
			}
		}
	}
	return names
}

// runWatched runs w on sys once. A run that outlives its time limit is a
// hang: the goroutines are dumped to stderr and the program exits.
func runWatched(sys system, w workload) (result, error) {
	limit := 2 * time.Minute
	if w.count == 0 {
		limit = w.duration + time.Minute
	}
	watchdog := time.AfterFunc(limit, func() {
		fmt.Fprintf(os.Stderr, "bench: %s on %s did not finish within %v; goroutines:\n", w.name, sys.Name(), limit)
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		os.Exit(2)
	})
	defer watchdog.Stop()
	res, err := run(context.Background(), sys, w)
	if err != nil {
		return res, err
	}
	return res, checkStray()
}

// describe formats one run's figures for the progress log.
func describe(w workload, res result) string {
	var parts []string
	for _, m := range w.metrics {
		parts = append(parts, fmt.Sprintf("%s %s", m.name, formatValue(map[string]float64{"": m.value(res)}, "")))
	}
	s := fmt.Sprintf("%s (%d round trips in %v", strings.Join(parts, ", "), res.requests, res.elapsed.Round(time.Millisecond))
	if res.frames >= 0 && res.requests > 0 {
		s += fmt.Sprintf("; server frames per round trip %.1f", float64(res.frames)/float64(res.requests))
	}
	return s + ")"
}
