package cluster_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestTakenRoutePortSaysSo: a node whose route port is taken fails at
// once with an error naming the address and the listener's error, not
// after the embedded server's ten-second start timeout with no reason.
func TestTakenRoutePortSaysSo(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer taken.Close()
	start := time.Now()
	c, err := cluster.New(cluster.Config{Name: "bus", Node: "n1", Listen: taken.Addr().String()})
	if err == nil {
		c.Close()
		t.Fatal("cluster.New on a taken route port succeeded")
	}
	if !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q: want it to name %s and say the address is in use", err, taken.Addr())
	}
	// The bound is the start timeout that was waited out before: any
	// scheduler pause stays far below it.
	if took := time.Since(start); took >= 8*time.Second {
		t.Errorf("cluster.New took %v to fail", took)
	}
}
