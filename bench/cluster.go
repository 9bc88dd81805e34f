package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// clusterDirect (-cluster-direct) gives the nodes DirectListen: their
// links go on direct connections between them (a prototype, issue 23).
var clusterDirect bool

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
	for i := range clusterNodes {
		name := fmt.Sprintf("n%d", i+1)
		cfg := cluster.Config{Name: "bench", Node: name, Listen: "127.0.0.1:0", Routes: routes}
		if clusterDirect {
			cfg.DirectListen = "127.0.0.1:0"
		}
		c, err := cluster.New(cfg)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("cluster: node %s: %w", name, err)
		}
		if i == 0 {
			routes = []string{c.RouteURL()}
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
		// The requests' links, both ways, on their direct connection.
		first, last := d.nodes[0], d.nodes[clusterNodes-1]
		if err := first.WaitDirect(wctx, last.Node()); err != nil {
			d.Close()
			return nil, err
		}
		if err := last.WaitDirect(wctx, first.Node()); err != nil {
			d.Close()
			return nil, err
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
	if len(d.nodes) == clusterNodes {
		// Which way the frames went: node 1 reads the responses, node 3
		// the requests.
		d1, n1 := d.nodes[0].DirectFrames()
		d3, n3 := d.nodes[clusterNodes-1].DirectFrames()
		fmt.Fprintf(os.Stderr, "cluster: frames read direct/NATS: n1 %d/%d, n3 %d/%d\n", d1, n1, d3, n3)
	}
	err := d.sbDeployment.Close()
	if werr := waitNATSGone(d.natsBefore, natsGrace); werr != nil {
		err = errors.Join(err, fmt.Errorf("cluster: %w", werr))
	}
	return err
}
