package main

import (
	"net"
	"os"
	"regexp"
	"testing"
)

// TestDefaultPortsDoNotCollide: the command's default ports (the bus, the
// monitor status looks for, the embedded NATS route port) differ from each
// other and from every bus port of the README's cluster, so an operator
// who follows the README never points status at a bus port or starts a
// second node on the first one's route port.
func TestDefaultPortsDoNotCollide(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	busPorts := map[string]bool{}
	for _, m := range regexp.MustCompile(`--addr 127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(string(readme), -1) {
		busPorts[m[1]] = true
	}
	if len(busPorts) < 3 {
		t.Fatalf("found bus ports %v in the README, want its three-node cluster's", busPorts)
	}
	port := func(addr string) string {
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("default address %q: %v", addr, err)
		}
		return p
	}
	monitor, route := port(defaultMonitor), port(defaultClusterListen)
	if monitor == defaultPort || route == defaultPort || monitor == route {
		t.Errorf("default ports collide: bus %s, monitor %s, route %s", defaultPort, monitor, route)
	}
	if busPorts[monitor] || busPorts[route] {
		t.Errorf("a default port is a bus port of the README's cluster %v: monitor %s, route %s", busPorts, monitor, route)
	}
}
