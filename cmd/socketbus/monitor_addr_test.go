package main

import "testing"

// TestMonitorAddr checks that a --monitor address without a host listens
// on loopback, and any other is kept.
func TestMonitorAddr(t *testing.T) {
	for in, want := range map[string]string{
		":7412":          "127.0.0.1:7412",
		"7412":           "127.0.0.1:7412",
		"127.0.0.1:0":    "127.0.0.1:0",
		"0.0.0.0:7412":   "0.0.0.0:7412",
		"[::1]:7412":     "[::1]:7412",
		"bus.local:7412": "bus.local:7412",
	} {
		if got := monitorAddr(in); got != want {
			t.Errorf("monitorAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
