package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
)

// The fan-out workloads: one requester reaches every member of a channel
// and ends each round trip with all their replies. On socketbus that is
// one Gather; on socketbus-calls one Call to each member in turn; on NATS
// a publish with a reply inbox and a count of the replies, the count known
// in advance (NATS users do not know it: the NATS figures are a floor no
// NATS program that must discover its responders reaches). The relay has
// no way to reach all its responders and skips them.

// callsName is the name of callsSystem.
const callsName = "socketbus-calls"

// gatherWorkloads returns the fan-out workloads: gather, a small request to
// 16 members, and gather-large, a 64 MiB one to 8 members that each read
// the whole body and answer small. smoke shrinks gather-large's body to
// 1 MiB (workloads shrinks the counts).
func gatherWorkloads(smoke bool) []workload {
	large := 64 << 20
	if smoke {
		large = 1 << 20
	}
	return []workload{
		{name: "gather", requesters: 1, responders: 16, requestSize: 128, responseSize: 128, fanout: true,
			warmup: 200, count: 2000,
			metrics: []metric{p50, p99, reqRate.named("gathers/s"), sysRT.named("syscalls/gather"), switchRT.named("switches/gather"), cpuRT.named("CPU µs/gather")}},
		{name: "gather-large", requesters: 1, responders: 8, requestSize: large, responseSize: 128, fanout: true,
			warmup: 1, count: 5, sampleHeap: true,
			metrics: []metric{mbRate.named("body MB/s"), heap}},
	}
}

// named returns m under another name.
func (m metric) named(name string) metric {
	m.name = name
	return m
}

// sbGatherRequester makes each round trip one Gather to every other member
// of its channel.
type sbGatherRequester struct {
	c       *socketbus.Client
	members int // the replies each Gather must have
}

func (r *sbGatherRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	replies, err := r.c.Gather(ctx, body)
	if err != nil {
		return 0, fmt.Errorf("socketbus: gather: %w", err)
	}
	if len(replies) != r.members {
		return 0, fmt.Errorf("socketbus: gather: %d replies, want %d", len(replies), r.members)
	}
	n := 0
	for _, rep := range replies {
		if rep.Err != nil {
			return 0, fmt.Errorf("socketbus: gather: member %v: %w", rep.From, rep.Err)
		}
		n += len(rep.Body)
	}
	return n, nil
}

// callsSystem is socketbus where a fan-out round trip is as many Calls as
// there are members, made one after another, instead of one Gather: the
// round trips a program without Gather pays at the least. A Call cannot
// name its member: the server pushes it to a member with push credit, and
// with Serve's defaults, one Call at a time, that is mostly the same member
// for all the Calls of a round trip (a throwaway count found one member
// taking all 16 in each of 200 round trips). The figure is the cost of the
// round trips, not of reaching every member. It runs fan-out workloads
// only.
type callsSystem struct{}

func (callsSystem) Name() string { return callsName }

// Accepts takes only fan-out shapes: on the others it would be socketbus.
func (callsSystem) Accepts(sh shape) bool { return sh.Fanout }

func (callsSystem) Start(ctx context.Context, sh shape) (deployment, error) {
	dep, err := socketbusSystem{}.Start(ctx, sh)
	if err != nil {
		return nil, err
	}
	d := dep.(*sbDeployment)
	for i, c := range d.requesters {
		d.reqs[i] = &sbCallsRequester{c: c, calls: sh.Responders}
	}
	return d, nil
}

// sbCallsRequester makes each round trip calls Calls in a row.
type sbCallsRequester struct {
	c     *socketbus.Client
	calls int
}

func (r *sbCallsRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	n := 0
	for i := range r.calls {
		resp, err := r.c.Call(ctx, body)
		if err != nil {
			return 0, fmt.Errorf("socketbus: call %d of %d: %w", i+1, r.calls, err)
		}
		n += len(resp)
	}
	return n, nil
}

// natsGatherRequester publishes each request with a reply subject of its
// own and counts the replies on it until it has one from every member.
// Its inbox subscription lasts as long as the connection: a round trip
// takes every reply of its request before the next request goes out.
type natsGatherRequester struct {
	nc      *nats.Conn
	inbox   string
	replies *nats.Subscription
	members int
}

func newNATSGatherRequester(nc *nats.Conn, members int) (*natsGatherRequester, error) {
	r := &natsGatherRequester{nc: nc, inbox: nats.NewInbox(), members: members}
	sub, err := nc.SubscribeSync(r.inbox)
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe to the inbox: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("nats: pending limits: %w", err)
	}
	r.replies = sub
	return r, nil
}

func (r *natsGatherRequester) RoundTrip(ctx context.Context, body []byte) (int, error) {
	if err := r.nc.PublishRequest(natsSubject, r.inbox, body); err != nil {
		return 0, fmt.Errorf("nats: publish: %w", err)
	}
	n := 0
	for i := range r.members {
		m, err := r.replies.NextMsgWithContext(ctx)
		if err != nil {
			return 0, fmt.Errorf("nats: reply %d of %d: %w", i+1, r.members, err)
		}
		n += len(m.Data)
	}
	return n, nil
}

// waitRemoteMembers waits until node knows of n members of the bench
// channel on the other nodes. The cluster has no event for it, so it looks
// every 10 ms, as natsDeployment.waitForInterest does.
func waitRemoteMembers(ctx context.Context, node *cluster.Cluster, n int) error {
	channel := socketbus.ChannelFromName(sbChannel)
	deadline := time.NewTimer(clusterFormTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		seen := 0
		for _, members := range node.ChannelMembers(channel) {
			seen += members
		}
		if seen == n {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("cluster: the first node knows of %d members on the others after %v, want %d", seen, clusterFormTimeout, n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
