package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"
)

// scaleRow is one figure of one point of a scaling workload: its value in
// every round, per system.
type scaleRow struct {
	workload, point string
	figure          figure
	values          map[string][]float64 // by system name, round by round
}

// scaleLimit bounds one point on one system; one that takes longer is a
// hang: the goroutines are dumped and the program exits.
const scaleLimit = 3 * time.Minute

// measureScale runs every point of every workload on each system in turn,
// round after round, the first system moving to last every round, and
// returns every figure of every round.
func measureScale(ws []scaleWorkload, systems []scaleSystem, rounds int) ([]scaleRow, error) {
	var rows []scaleRow
	for _, w := range ws {
		for _, p := range w.points {
			byFigure := map[string]map[string][]float64{}
			for round := 1; round <= rounds; round++ {
				for k := range systems {
					sys := systems[(k+round-1)%len(systems)]
					watchdog := time.AfterFunc(scaleLimit, func() {
						fmt.Fprintf(os.Stderr, "bench: %s %s on %s did not finish within %v; goroutines:\n", w.name, p.label, sys.Name(), scaleLimit)
						pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
						os.Exit(2)
					})
					load := loadAverage()
					figs, err := p.run(context.Background(), sys)
					watchdog.Stop()
					if err != nil {
						return nil, fmt.Errorf("%s %s on %s, round %d: %w", w.name, p.label, sys.Name(), round, err)
					}
					var parts []string
					for _, f := range w.figures {
						v := figs[f.name]
						if byFigure[f.name] == nil {
							byFigure[f.name] = map[string][]float64{}
						}
						byFigure[f.name][sys.Name()] = append(byFigure[f.name][sys.Name()], v)
						parts = append(parts, fmt.Sprintf("%s %s", f.name, formatNumber(v)))
					}
					fmt.Fprintf(os.Stderr, "%s %s round %d/%d %s: %s (load %s)\n", w.name, p.label, round, rounds, sys.Name(), strings.Join(parts, ", "), load)
				}
			}
			for _, f := range w.figures {
				rows = append(rows, scaleRow{workload: w.name, point: p.label, figure: f, values: byFigure[f.name]})
			}
		}
	}
	return rows, nil
}

// formatNumber formats v with three significant digits, or none after the
// point from 1000 up.
func formatNumber(v float64) string {
	switch {
	case v >= 1000 || v <= -1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// scaleCells lays out the scaling table: per row, each system's figure in
// every round and its median, then socketbus's ratio to each other system
// in every round and the median of those ratios.
func scaleCells(rows []scaleRow, systems []string) [][]string {
	head := []string{"workload", "point", "figure"}
	for _, s := range systems {
		head = append(head, s+" rounds", s+" median")
	}
	for _, s := range systems[1:] {
		head = append(head, systems[0]+"/"+s+" rounds", systems[0]+"/"+s+" median")
	}
	out := [][]string{head}
	for _, r := range rows {
		line := []string{r.workload, r.point, r.figure.name}
		for _, s := range systems {
			line = append(line, joinNumbers(r.values[s], formatNumber), formatNumber(median(r.values[s])))
		}
		first := r.values[systems[0]]
		for _, s := range systems[1:] {
			var ratios []float64
			for i, v := range r.values[s] {
				if i < len(first) && v != 0 {
					ratios = append(ratios, first[i]/v)
				}
			}
			ratio := func(x float64) string { return fmt.Sprintf("%.2fx", x) }
			med := "-"
			if len(ratios) > 0 {
				med = ratio(median(ratios))
			}
			line = append(line, joinNumbers(ratios, ratio), med)
		}
		out = append(out, line)
	}
	return out
}

// joinNumbers formats each of vs and joins them with spaces.
func joinNumbers(vs []float64, format func(float64) string) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = format(v)
	}
	return strings.Join(s, " ")
}

// writeScaleText writes the scaling table with aligned columns.
func writeScaleText(w io.Writer, rows []scaleRow, systems []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, line := range scaleCells(rows, systems) {
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

// writeScaleMarkdown writes the scaling table as a markdown table.
func writeScaleMarkdown(w io.Writer, rows []scaleRow, systems []string) error {
	var b strings.Builder
	for i, line := range scaleCells(rows, systems) {
		b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat(" --- |", len(line)) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
