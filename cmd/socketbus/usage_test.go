package main

import (
	"strings"
	"testing"
)

// TestUsageMistakesExitTwo: an address, a route or a memory budget the
// command cannot use is a usage error, status 2, said at once, rather
// than a wait for a server that cannot exist (6) or a budget raised
// without a word.
func TestUsageMistakesExitTwo(t *testing.T) {
	bin := buildBinary(t)
	for _, c := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"send", "--server", "a:b:c", "--channel", "x", "--data", "y"}, `--server "a:b:c"`},
		{[]string{"serve", "--addr", "bad:port:x"}, `--addr "bad:port:x"`},
		{[]string{"serve", "--max-memory", "100"}, "the smallest budget is 8 MiB"},
		{[]string{"serve", "--max-gather-members", "-1"}, "--max-gather-members cannot be negative"},
		{[]string{"serve", "--stream-window", "64KiB"}, "--stream-window 64 KiB: the smallest window is 256 KiB"},
		{[]string{"send", "--channel", "x", "--data", "y", "--all", "--publish"}, "[all publish] were all set"},
		{[]string{"send", "--channel", "x", "--data", "y", "--all", "--out", "f"}, "--out does not go with --all"},
		{[]string{"send", "--channel", "x", "--data", "y", "--json"}, "--json needs --all or --publish"},
		{[]string{"serve", "--cluster-name", "b", "--routes", "bad"}, `--routes "bad"`},
		{[]string{"serve", "--cluster-name", "b", "--cluster-listen", "nowhere"}, `--cluster-listen "nowhere"`},
		{[]string{"serve", "--cluster-name", "b", "--cluster-direct", "nowhere"}, `--cluster-direct "nowhere"`},
		{[]string{"serve", "--cluster-direct", "127.0.0.1:0"}, "--cluster-direct needs --cluster-name"},
		{[]string{"serve", "--cluster-name", "b", "--cluster-direct", "127.0.0.1:0"}, "--cluster-direct needs --cluster-user and --cluster-password"},
	} {
		res := runCmd(t, bin, nil, "", c.args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, c.want) {
			t.Errorf("socketbus %s: status %d, stderr %q; want %d and %q", strings.Join(c.args, " "), res.code, res.stderr, exitUsage, c.want)
		}
	}
}

// TestClusterLogNamesTheRoutes: serve's startup line names the routes it
// was given, and the node's own route URL apart.
func TestClusterLogNamesTheRoutes(t *testing.T) {
	bin := buildBinary(t)
	route := "nats://" + closedPort(t)
	p := startProc(t, bin, nil, "serve", "--addr", "127.0.0.1:0", "--cluster-name", "logbus", "--node", "n1",
		"--cluster-listen", "127.0.0.1:0", "--routes", route)
	line := p.waitLine(p.stderr, "msg=cluster")
	if !strings.Contains(line, "routes="+route) || !strings.Contains(line, "listen=nats://127.0.0.1:") {
		t.Fatalf("the cluster line %q does not name the routes %s and the node's own route URL", line, route)
	}
}
