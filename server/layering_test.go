package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerLinksNoOpenTelemetry: trace context is package otel's
// business; a program that runs a server does not link OpenTelemetry.
func TestServerLinksNoOpenTelemetry(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/socketbus/socketbus/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "go.opentelemetry.io") {
			t.Errorf("package server depends on %s", dep)
		}
	}
}
