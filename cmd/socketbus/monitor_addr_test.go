package main

import "testing"

// TestMonitorAddr checks that a --monitor address without a host listens
// on loopback, and any other is kept.
func TestMonitorAddr(t *testing.T) {
	for in, want := range map[string]string{
		":7511":          "127.0.0.1:7511",
		"7511":           "127.0.0.1:7511",
		"127.0.0.1:0":    "127.0.0.1:0",
		"0.0.0.0:7511":   "0.0.0.0:7511",
		"[::1]:7511":     "[::1]:7511",
		"bus.local:7511": "bus.local:7511",
	} {
		if got := monitorAddr(in); got != want {
			t.Errorf("monitorAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
