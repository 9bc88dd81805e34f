package main

import (
	"fmt"
	"io"
	"slices"
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

// clusterName is the cluster system's name and natsClusterName NATS's
// three-node cluster's; clusterRatioSystems are the systems the socketbus
// bus is compared with, in column order, in columns that are there only
// when it ran.
const (
	clusterName     = "socketbus-cluster"
	natsClusterName = "NATS-cluster"
)

var clusterRatioSystems = []string{"socketbus", natsClusterName}

// cells lays out the table: a heading line, then one line per row: each
// figure per system, socketbus's ratio to each other system, when
// socketbus-calls ran socketbus's ratio to it and, when the cluster system
// ran, its ratios to single-node socketbus and to NATS's cluster.
// With targets, more columns compare the ratios with the targets
// (two for socketbus's, two for the cluster's): those are for tracking the
// work, not for the users reading the figures.
func cells(rows []row, systems []string, targets bool) [][]string {
	withCluster := slices.Contains(systems, clusterName)
	withCalls := slices.Contains(systems, callsName)
	head := []string{"workload", "figure"}
	head = append(head, systems...)
	for _, s := range ratioSystems {
		head = append(head, "socketbus/"+s)
	}
	if withCalls {
		head = append(head, "socketbus/"+callsName)
	}
	if withCluster {
		for _, s := range clusterRatioSystems {
			head = append(head, "cluster/"+s)
		}
	}
	if targets {
		head = append(head, "target", "verdict")
		if withCluster {
			head = append(head, "cluster target", "cluster verdict")
		}
	}
	out := [][]string{head}
	for _, r := range rows {
		line := []string{r.workload, r.metric.name}
		for _, s := range systems {
			line = append(line, formatValue(r.values, s))
		}
		ratios, bounds, verdict := compare(r, "socketbus", ratioSystems, func(other string) float64 {
			if other == "relay" {
				return r.metric.vsRelay
			}
			return r.metric.vsNATS
		})
		line = append(line, ratios...)
		if withCalls {
			ratios, _, _ = compare(r, "socketbus", []string{callsName}, func(string) float64 { return 0 })
			line = append(line, ratios...)
		}
		var cBounds []string
		var cVerdict string
		if withCluster {
			ratios, cBounds, cVerdict = compare(r, clusterName, clusterRatioSystems, func(other string) float64 {
				if other == "socketbus" {
					return r.metric.clusterVsSingle
				}
				return r.metric.clusterVsNATS
			})
			line = append(line, ratios...)
		}
		if targets {
			line = append(line, strings.Join(bounds, ", "), verdict)
			if withCluster {
				line = append(line, strings.Join(cBounds, ", "), cVerdict)
			}
		}
		out = append(out, line)
	}
	return out
}

// compare returns the cells of the ratios of r's figure for system of to
// its figure for each of others ("-" where either is missing), the targets
// bound gives for them (0: none) as "≤2x socketbus", and the verdict:
// "missed" if any ratio misses its target, "met" if all meet theirs, ""
// if none has one or its ratio is missing.
func compare(r row, of string, others []string, bound func(other string) float64) (ratios, bounds []string, verdict string) {
	v, have := r.values[of]
	for _, s := range others {
		other, ok := r.values[s]
		if !have || !ok || other == 0 {
			ratios = append(ratios, "-")
			continue
		}
		ratio := v / other
		ratios = append(ratios, fmt.Sprintf("%.2fx", ratio))
		b := bound(s)
		if b == 0 {
			continue
		}
		op, met := "≥", ratio >= b
		if r.metric.lowerBetter {
			op, met = "≤", ratio <= b
		}
		bounds = append(bounds, fmt.Sprintf("%s%gx %s", op, b, s))
		switch {
		case !met:
			verdict = "missed"
		case verdict == "":
			verdict = "met"
		}
	}
	return ratios, bounds, verdict
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
