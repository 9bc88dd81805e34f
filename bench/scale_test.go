package main

import (
	"slices"
	"strings"
	"testing"
)

// TestScaleCellsPerRoundRatios checks that the scaling table shows every
// round's figures and their median, and socketbus's ratio in every round
// with the median of those ratios, not the ratio of the medians.
func TestScaleCellsPerRoundRatios(t *testing.T) {
	rows := []scaleRow{{workload: "scale-conns", point: "100 conns", figure: figure{name: "req/s"},
		values: map[string][]float64{"socketbus": {10, 20, 30}, "NATS": {5, 40, 10}}}}
	got := scaleCells(rows, []string{"socketbus", "NATS"})
	wantHead := []string{"workload", "point", "figure", "socketbus rounds", "socketbus median", "NATS rounds", "NATS median",
		"socketbus/NATS rounds", "socketbus/NATS median"}
	if !slices.Equal(got[0], wantHead) {
		t.Errorf("heading %q, want %q", got[0], wantHead)
	}
	// Medians 20 and 10 would give 2.00x too; the per-round ratios are
	// 2, 0.5 and 3.
	want := "scale-conns|100 conns|req/s|10 20 30|20|5 40 10|10|2.00x 0.50x 3.00x|2.00x"
	if line := strings.Join(got[1], "|"); line != want {
		t.Errorf("row %q, want %q", line, want)
	}
}

// TestSplitScale checks that -workloads lists split into the other
// workloads and the scaling ones, whatever their order and case.
func TestSplitScale(t *testing.T) {
	others, scale := splitScale("lat, Join,tput,large-sizes,")
	if others != "lat,tput" || scale != " Join,large-sizes" {
		t.Errorf("got %q and %q, want lat,tput and the scaling ones", others, scale)
	}
	if others, scale := splitScale("lat,tput,large,fanin"); others != "lat,tput,large,fanin" || scale != "" {
		t.Errorf("the default list split into %q and %q, want it whole and no scaling workload", others, scale)
	}
}

// TestCount checks the thousands separators of the table's labels.
func TestCount(t *testing.T) {
	for n, want := range map[int]string{1: "1", 100: "100", 1000: "1,000", 9700: "9,700", 10000: "10,000", 1234567: "1,234,567"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
