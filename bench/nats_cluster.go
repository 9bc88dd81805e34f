package main

import (
	"context"
	"fmt"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// natsClusterSystem is NATS's own three-node cluster in this process: three
// routed nats-servers, nodes 2 and 3 routed to node 1, the responders on
// node 3 and the requesters on node 1, so that every request crosses the
// cluster as socketbus-cluster's do. Clients and responders are
// natsSystem's.
type natsClusterSystem struct{}

func (natsClusterSystem) Name() string { return natsClusterName }

func (natsClusterSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	d := &natsDeployment{}
	for i := range clusterNodes {
		opts := natsOptions()
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster = natsserver.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT}
		if i > 0 {
			first := d.servers[0].ClusterAddr()
			opts.Routes = natsserver.RoutesFromStr(fmt.Sprintf("nats://%s", first.String()))
		}
		srv, err := startNATSServer(ctx, opts)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("nats cluster: node %d: %w", i+1, err)
		}
		d.servers = append(d.servers, srv)
	}
	if err := d.connect(sh, d.servers[clusterNodes-1].ClientURL(), d.servers[0].ClientURL()); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.waitForInterest(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// waitForInterest waits until the responders' subscriptions on the last
// node have reached the first, where the requesters are: until then a
// request finds no responders. NATS has no event for it, so it looks
// every 10 ms.
func (d *natsDeployment) waitForInterest(ctx context.Context) error {
	deadline := time.NewTimer(clusterFormTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !d.hasInterest() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("nats cluster: the responders' interest did not reach the first node within %v", clusterFormTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// hasInterest reports whether the first node knows of a subscriber to the
// bench subject.
func (d *natsDeployment) hasInterest() bool {
	acc, err := d.servers[0].LookupAccount(natsserver.DEFAULT_GLOBAL_ACCOUNT)
	if err != nil {
		return false
	}
	return acc.SubscriptionInterest(natsSubject)
}
