package socketbus_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientLinksNoServer: a program that only uses the Client imports
// the root package, whose dependencies hold none of the server's parts
// (its package, the router, the memory budget), nor NATS, the cluster or
// OpenTelemetry.
func TestClientLinksNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/socketbus/socketbus").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"socketbus/server", "socketbus/internal/router", "socketbus/internal/budget",
		"socketbus/cluster", "nats-io", "go.opentelemetry.io"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.Contains(dep, f) {
				t.Errorf("the root package depends on %s", dep)
			}
		}
	}
}

// TestRouterImportsNoSockets: the routing state knows nothing of sockets
// or connections.
func TestRouterImportsNoSockets(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "github.com/socketbus/socketbus/internal/router").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if imp == "net" || imp == "crypto/tls" || strings.HasSuffix(imp, "internal/frameconn") {
			t.Errorf("internal/router imports %s", imp)
		}
	}
}
