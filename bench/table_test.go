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

// TestTableClusterColumns checks that the cluster's ratios to single-node
// socketbus and to NATS's cluster, and its targets, appear when it ran,
// beside socketbus's unchanged ones.
func TestTableClusterColumns(t *testing.T) {
	rows := []row{
		{workload: "lat", metric: p50.withTargets(0.7, 0).withClusterTargets(1.6, 0.9),
			values: map[string]float64{"socketbus": 50, "NATS": 100, clusterName: 120, natsClusterName: 150}},
		{workload: "large", metric: mbRate.withTargets(1.5, 0.7).withClusterTargets(0.7, 1.5),
			values: map[string]float64{"socketbus": 1200, "NATS": 800, clusterName: 700, natsClusterName: 400}},
		{workload: "fanin", metric: reqRate, values: map[string]float64{"socketbus": 100, "NATS": 100}},
	}
	systems := []string{"socketbus", "NATS", clusterName, natsClusterName}

	got := cells(rows, systems, true)
	wantHead := []string{"workload", "figure", "socketbus", "NATS", clusterName, natsClusterName, "socketbus/NATS", "socketbus/relay",
		"cluster/socketbus", "cluster/NATS-cluster", "target", "verdict", "cluster target", "cluster verdict"}
	if !slices.Equal(got[0], wantHead) {
		t.Errorf("heading %q, want %q", got[0], wantHead)
	}
	want := []string{
		"lat p50 µs 50.0 100.0 120.0 150.0 0.50x - 2.40x 0.80x ≤0.7x NATS met ≤1.6x socketbus, ≤0.9x NATS-cluster missed",
		"large MB/s 1200 800.0 700.0 400.0 1.50x - 0.58x 1.75x ≥1.5x NATS met ≥0.7x socketbus, ≥1.5x NATS-cluster missed",
		"fanin req/s 100.0 100.0 - - 1.00x - - -    ",
	}
	for i, w := range want {
		if line := strings.Join(got[i+1], " "); line != w {
			t.Errorf("row %d %q, want %q", i, line, w)
		}
	}

	// Without the cluster, no cluster column.
	plain := cells(rows[:1], []string{"socketbus", "NATS"}, true)
	if slices.ContainsFunc(plain[0], func(h string) bool { return strings.HasPrefix(h, "cluster") }) {
		t.Errorf("without the cluster, heading %q has cluster columns", plain[0])
	}
}

// TestTableCallsColumn checks that socketbus's ratio to socketbus-calls
// appears when socketbus-calls ran, after the ratios to NATS and the relay.
func TestTableCallsColumn(t *testing.T) {
	rows := []row{{workload: "gather", metric: p50, values: map[string]float64{"socketbus": 100, callsName: 400, "NATS": 200}}}
	got := cells(rows, []string{"socketbus", "NATS", callsName}, false)
	wantHead := []string{"workload", "figure", "socketbus", "NATS", callsName, "socketbus/NATS", "socketbus/relay", "socketbus/" + callsName}
	if !slices.Equal(got[0], wantHead) {
		t.Errorf("heading %q, want %q", got[0], wantHead)
	}
	if line := strings.Join(got[1], " "); line != "gather p50 µs 100.0 200.0 400.0 0.50x - 0.25x" {
		t.Errorf("row %q, want the figures and the ratios 0.50x, - and 0.25x", line)
	}
}
