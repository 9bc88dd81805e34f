package main

import (
	"strings"
	"testing"
)

// TestClusterDirectServes: two serve processes with --cluster-direct,
// route credentials (the password from the environment) and mutual TLS
// connect directly — each logs that the other's link comes on a direct
// connection — and a request from a client of n1 crosses to a receiver
// on n2 and back, neither node dropping or refusing a connection.
func TestClusterDirectServes(t *testing.T) {
	bin := buildBinary(t)
	cert, key, _ := writeRouteCertificate(t, t.TempDir())
	env := []string{"SOCKETBUS_CLUSTER_PASSWORD=route-s3cret"}
	secure := []string{"--cluster-name", "direct", "--cluster-user", "bus",
		"--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", cert}
	l1, l2 := freeLoopbackAddr(t), freeLoopbackAddr(t)
	n1 := startServer(t, bin, env, append([]string{"--node", "n1", "--cluster-listen", l1,
		"--cluster-direct", freeLoopbackAddr(t)}, secure...)...)
	n2 := startServer(t, bin, env, append([]string{"--node", "n2", "--cluster-listen", l2, "--routes", "nats://" + l1,
		"--cluster-direct", freeLoopbackAddr(t)}, secure...)...)
	n1.waitLine(n1.stderr, "direct=n2")
	n2.waitLine(n2.stderr, "direct=n1")
	startReceiver(t, bin, n2, "--channel", "direct", "--exec", "tr a-z A-Z")
	res := runCmd(t, bin, nil, "", "send", "--server", n1.addr, "--channel", "direct", "--data", "across")
	if res.code != 0 || res.stdout != "ACROSS" {
		t.Fatalf("send on n1 to a receiver on n2 over a direct connection: status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	for _, n := range []*serveProc{n1, n2} {
		if log := n.stderr.String(); strings.Contains(log, "dropped") || strings.Contains(log, "refused") {
			t.Fatalf("a direct connection failed:\n%s", log)
		}
	}
}
