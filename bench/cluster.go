package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// clusterSystem runs a bus of three socketbus nodes in this process, each
// a Server on its own loopback listener with its own embedded nats-server
// (package cluster, default heartbeat); nodes 2 and 3 route to node 1's.
// The responders dial node 3 and the requesters node 1, so every request
// crosses from node 1 to node 3 and its response comes back
// (docs/PROTOCOL.md section 21). Clients, responders and the way they
// answer are socketbusSystem's.
type clusterSystem struct{}

func (clusterSystem) Name() string { return clusterName }

// clusterDirect (-cluster-direct, on by default) gives the nodes
// DirectListen: their links go on direct connections between them.
var clusterDirect bool

// clusterRoutePassword keys the direct connections' hello (and guards the
// routes), as DirectListen needs.
const clusterRoutePassword = "bench-route-secret"

// clusterNodes is the bus's size.
const clusterNodes = 3

// clusterFormTimeout bounds how long Start waits for the nodes to see
// each other.
const clusterFormTimeout = 10 * time.Second

// clusterDeployment is a socketbus deployment over the bus's servers.
type clusterDeployment struct {
	*sbDeployment
	nodes []*cluster.Cluster // the servers' nodes, in the same order
	// natsBefore are the nats-io goroutines that ran before the bus
	// started: Close waits for every other one to end.
	natsBefore map[string]bool
}

func (clusterSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	d := &clusterDeployment{sbDeployment: newSBDeployment(), natsBefore: natsGoroutines()}
	var routes []string
	// The requests' links, both ways, come on their direct connection:
	// node 1 logs n3's, node 3 n1's (cluster.Config.Logger).
	direct := []*directWatch{newDirectWatch("n3"), nil, newDirectWatch("n1")}
	for i := range clusterNodes {
		name := fmt.Sprintf("n%d", i+1)
		cfg := cluster.Config{Name: "bench", Node: name, Listen: "127.0.0.1:0", Routes: routes}
		if clusterDirect {
			cfg.DirectListen = "127.0.0.1:0"
			cfg.RouteUser, cfg.RoutePassword = "bench", clusterRoutePassword
			if w := direct[i]; w != nil {
				cfg.Logger = slog.New(w)
			}
		}
		c, err := cluster.New(cfg)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("cluster: node %s: %w", name, err)
		}
		if i == 0 {
			routes = []string{c.RouteURL()}
			if clusterDirect {
				routes = []string{strings.Replace(c.RouteURL(), "nats://", "nats://bench:"+clusterRoutePassword+"@", 1)}
			}
		}
		// From here the server owns the node and closes it when it closes.
		srv, err := serveSocketbus(server.Config{Cluster: c})
		if err != nil {
			c.Close()
			d.Close()
			return nil, fmt.Errorf("cluster: node %s: %w", name, err)
		}
		d.servers = append(d.servers, srv)
		d.nodes = append(d.nodes, c)
	}
	wctx, cancel := context.WithTimeout(ctx, clusterFormTimeout)
	defer cancel()
	for _, c := range d.nodes {
		if err := c.WaitNodes(wctx, clusterNodes); err != nil {
			d.Close()
			return nil, err
		}
	}
	if clusterDirect {
		for _, w := range direct {
			if w == nil {
				continue
			}
			if err := w.wait(wctx); err != nil {
				d.Close()
				return nil, err
			}
		}
	}
	first, last := d.servers[0], d.servers[clusterNodes-1]
	if err := d.dial(ctx, last.addr, first.addr, sh); err != nil {
		d.Close()
		return nil, err
	}
	if sh.Fanout {
		// A gather reaches the members the first node knows of.
		if err := waitRemoteMembers(ctx, d.nodes[0], sh.Responders); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Close closes the clients and the servers, which close their nodes and
// so their nats-servers, and then waits for the goroutines of nats-server
// and nats.go that the bus started to end (checkStray does not look at
// those).
func (d *clusterDeployment) Close() error {
	err := d.sbDeployment.Close()
	if werr := waitNATSGone(d.natsBefore, natsGrace); werr != nil {
		err = errors.Join(err, fmt.Errorf("cluster: %w", werr))
	}
	return err
}
