package main

import (
	"net"
	"strings"
	"testing"
)

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestClusterOfThreeServes: the README's bus — three `serve` processes
// with embedded NATS, the second and third routed to the first — carries
// a request from a client of the first node to a receiver on the third,
// and `status` on the first names the nodes and counts the channel's
// clients on each.
func TestClusterOfThreeServes(t *testing.T) {
	bin := buildBinary(t)
	var nodes []*serveProc
	var route string
	for i, name := range []string{"n1", "n2", "n3"} {
		listen := freeLoopbackAddr(t)
		args := []string{"--cluster-name", "demo", "--node", name, "--cluster-listen", listen, "--monitor", "127.0.0.1:0"}
		if i == 0 {
			route = "nats://" + listen
		} else {
			args = append(args, "--routes", route)
		}
		nodes = append(nodes, startServer(t, bin, nil, args...))
	}
	for _, other := range []string{"n2", "n3"} {
		nodes[0].waitLine(nodes[0].stderr, "node "+other+" joined the bus")
	}
	nodes[2].waitLine(nodes[2].stderr, "node n1 joined the bus")
	startReceiver(t, bin, nodes[2], "--channel", "demo", "--exec", "tr a-z A-Z")
	res := runCmd(t, bin, nil, "", "send", "--server", nodes[0].addr, "--channel", "demo", "--data", "hello")
	if res.code != 0 || res.stdout != "HELLO" {
		t.Fatalf("send on n1 to a receiver on n3: status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runCmd(t, bin, nil, "", "status", "--monitor", nodes[0].monitor)
	if res.code != 0 {
		t.Fatalf("status: %d %s", res.code, res.stderr)
	}
	for _, want := range []string{"bus: 3 nodes: n1 (this one), n2, n3", "ON OTHER NODES", "n2 0, n3 1"} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("status on n1 lacks %q:\n%s", want, res.stdout)
		}
	}
}

// TestDuplicateNodeNameServe (issue 17, finding 4): a second serve with a
// live node's name is refused — it exits with an error naming the cause —
// and the live node logs the refusal and keeps serving.
func TestDuplicateNodeNameServe(t *testing.T) {
	bin := buildBinary(t)
	listen := freeLoopbackAddr(t)
	n1 := startServer(t, bin, nil, "--cluster-name", "dup", "--node", "n1", "--cluster-listen", listen)
	res := runCmd(t, bin, nil, "", "serve", "--addr", "127.0.0.1:0", "--cluster-name", "dup", "--node", "n1",
		"--cluster-listen", freeLoopbackAddr(t), "--routes", "nats://"+listen)
	if res.code == 0 || !strings.Contains(res.stderr, "node name taken") {
		t.Fatalf("a second serve with n1's name: status %d, stderr %q; want an error saying the name is taken", res.code, res.stderr)
	}
	n1.waitLine(n1.stderr, "a node starting with this node's name")
	startReceiver(t, bin, n1, "--channel", "dup", "--exec", "tr a-z A-Z")
	if res := runCmd(t, bin, nil, "", "send", "--server", n1.addr, "--channel", "dup", "--data", "still"); res.code != 0 || res.stdout != "STILL" {
		t.Fatalf("n1 after the refusal: status %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}
