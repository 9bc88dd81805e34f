package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// row is one figure of one workload: the median over rounds per system.
type row struct {
	workload string
	metric   metric
	values   map[string]float64 // by system name; absent if not run
}

// ratioSystems are the systems socketbus is compared with, in column order.
var ratioSystems = []string{"NATS", "relay"}

// cells lays out the table: a heading line, then one line per row: each
// figure per system and socketbus's ratio to each other system. With
// targets, two more columns compare the ratios with the targets:
// those are for tracking the work, not for the users reading the figures.
func cells(rows []row, systems []string, targets bool) [][]string {
	head := []string{"workload", "figure"}
	head = append(head, systems...)
	for _, s := range ratioSystems {
		head = append(head, "socketbus/"+s)
	}
	if targets {
		head = append(head, "target", "verdict")
	}
	out := [][]string{head}
	for _, r := range rows {
		line := []string{r.workload, r.metric.name}
		for _, s := range systems {
			line = append(line, formatValue(r.values, s))
		}
		sb, haveSB := r.values["socketbus"]
		var bounds []string
		verdict := ""
		for _, s := range ratioSystems {
			other, ok := r.values[s]
			if !haveSB || !ok || other == 0 {
				line = append(line, "-")
				continue
			}
			ratio := sb / other
			line = append(line, fmt.Sprintf("%.2fx", ratio))
			bound := r.metric.vsNATS
			if s == "relay" {
				bound = r.metric.vsRelay
			}
			if bound == 0 {
				continue
			}
			op, met := "≥", ratio >= bound
			if r.metric.lowerBetter {
				op, met = "≤", ratio <= bound
			}
			bounds = append(bounds, fmt.Sprintf("%s%gx %s", op, bound, s))
			switch {
			case !met:
				verdict = "missed"
			case verdict == "":
				verdict = "met"
			}
		}
		if targets {
			line = append(line, strings.Join(bounds, ", "), verdict)
		}
		out = append(out, line)
	}
	return out
}

func formatValue(values map[string]float64, system string) string {
	v, ok := values[system]
	switch {
	case !ok:
		return "-"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// writeText writes the table with aligned columns, with the target
// columns if targets.
func writeText(w io.Writer, rows []row, systems []string, targets bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, line := range cells(rows, systems, targets) {
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	return tw.Flush()
}

// writeMarkdown writes caption as a paragraph, then the table as a markdown
// table, with the target columns if targets.
func writeMarkdown(w io.Writer, caption string, rows []row, systems []string, targets bool) error {
	lines := cells(rows, systems, targets)
	var b strings.Builder
	b.WriteString(caption + "\n\n")
	for i, line := range lines {
		b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat(" --- |", len(line)) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
