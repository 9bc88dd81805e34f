package main

import (
	"slices"
	"strings"
	"testing"
)

// TestTableColumns checks the table shows figures and ratios, and the
// target and verdict columns only when asked.
func TestTableColumns(t *testing.T) {
	rows := []row{{workload: "tput", metric: reqRate.withTargets(1.25, 0), values: map[string]float64{"socketbus": 150000, "NATS": 100000, "relay": 200000}}}
	systems := []string{"socketbus", "NATS", "relay"}

	plain := cells(rows, systems, false)
	wantHead := []string{"workload", "figure", "socketbus", "NATS", "relay", "socketbus/NATS", "socketbus/relay"}
	if !slices.Equal(plain[0], wantHead) {
		t.Errorf("heading %q, want %q", plain[0], wantHead)
	}
	if got := strings.Join(plain[1], " "); got != "tput req/s 150000 100000 200000 1.50x 0.75x" {
		t.Errorf("row %q, want the figures and the ratios", got)
	}

	tracked := cells(rows, systems, true)
	if got := tracked[0][len(tracked[0])-2:]; !slices.Equal(got, []string{"target", "verdict"}) {
		t.Errorf("with targets, heading ends %q, want target and verdict", got)
	}
	if got := tracked[1][len(tracked[1])-2:]; !slices.Equal(got, []string{"≥1.25x NATS", "met"}) {
		t.Errorf("with targets, row ends %q, want the target and met", got)
	}
}
