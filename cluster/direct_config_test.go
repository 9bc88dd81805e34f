package cluster_test

import (
	"errors"
	"testing"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectNeedsCredentials: a node with DirectListen and no
// RoutePassword, embedded or external, is refused with
// ErrDirectNeedsCredentials before it starts anything: its hello would be
// keyed with an empty secret, which anyone reaching the port could pass.
func TestDirectNeedsCredentials(t *testing.T) {
	for _, cfg := range []cluster.Config{
		{Name: "bus", Node: "n1", Listen: "127.0.0.1:0", DirectListen: "127.0.0.1:0"},
		{Name: "bus", Node: "n1", Listen: "127.0.0.1:0", DirectListen: "127.0.0.1:0", RouteUser: "bus"},
		{Name: "bus", Node: "n1", NATSURL: "nats://127.0.0.1:1", DirectListen: "127.0.0.1:0"},
	} {
		c, err := cluster.New(cfg)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, cluster.ErrDirectNeedsCredentials) {
			t.Fatalf("New(%+v): %v, want ErrDirectNeedsCredentials", cfg, err)
		}
	}
}
