//go:build linux

package attack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/internal/wire"
)

// TestClusterFlood (issue 17, finding 5): a `serve` node of a bus whose
// route port is open (no --cluster-user, no TLS: the default) is joined by
// a hostile nats-server, which floods the bus's subjects for attackTime as
// a node named evil would: states naming 16,384 new channels each, small
// state messages, and phantom node announcements, answering the node's
// link resets so that it keeps being heard, and claims on client IDs
// (finding 8), which the node answers. The node, with --max-memory
// 256MiB, must keep its peak resident set within the ceiling plus slack,
// and a bystander pair on it must keep working.
func TestClusterFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("the attack suite takes about a minute")
	}
	if raceEnabled {
		t.Skip("the attack suite runs without -race, on its own (.ci/run)")
	}
	bin := buildServe(t)
	limited := supportsMaxMemory(t, bin)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	route := ln.Addr().String()
	ln.Close()
	args := []string{"--cluster-name", "atk", "--node", "n1", "--cluster-listen", route}
	if limited {
		args = append(args, "--max-memory", maxMemoryFlag)
	}
	a := attack{name: "h_cluster_flood", what: "a hostile nats-server routed to the node floods states, channels and phantom nodes",
		run: func(ctx context.Context, _ string, _ time.Time) (string, error) {
			return attackClusterFlood(ctx, route)
		}}
	hwm, completed, alive, summary := runAttack(t, bin, args, limited, false, a)
	t.Logf("| %s | %s | %d | %v | %s |", a.name, hwm, completed, alive, summary)
}

// attackClusterFlood routes a nats-server of its own to the node's route
// port and floods the bus until ctx ends.
func attackClusterFlood(ctx context.Context, route string) (string, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
		Cluster: natsserver.ClusterOpts{Name: "atk", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT},
		Routes:  natsserver.RoutesFromStr("nats://" + route)})
	if err != nil {
		return "", err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return "", errors.New("the attacker's nats-server is not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return "", err
	}
	defer nc.Close()
	answers := make(chan *nats.Msg, 1<<16) // room for a round of claims' answers
	if _, err := nc.ChanSubscribe("socketbus.atk.to.evil.n1", answers); err != nil {
		return "", err
	}
	var seq uint64
	link := func(kind byte, body []byte) {
		seq++
		msg := binary.BigEndian.AppendUint64([]byte{kind}, seq)
		_ = nc.Publish("socketbus.atk.to.n1.evil", append(msg, body...))
	}
	state := func(first uint64, n int) {
		body := binary.BigEndian.AppendUint64(nil, 0)
		body = binary.BigEndian.AppendUint32(body, uint32(n))
		for i := range n {
			var id wire.ID
			binary.BigEndian.PutUint64(id[8:], first+uint64(i))
			body = append(body, id[:]...)
			body = binary.BigEndian.AppendUint32(body, 1)
			body = binary.BigEndian.AppendUint32(body, 0)
		}
		link(4, body)
	}
	answer := func() {
		for {
			select {
			case m := <-answers:
				if len(m.Data) >= 17 && m.Data[0] == 7 { // a reset: acknowledge it, to be heard again
					link(8, m.Data[9:17])
				}
			default:
				return
			}
		}
	}
	// The route is up once the node answers a ping.
	hdr := wire.Header{Version: wire.Version2, Type: wire.TypeStart, Flags: wire.FlagPing, Final: true}
	ping := wire.AppendHeader([]byte{1}, &hdr)
	for up := false; !up; {
		link(2, ping)
		select {
		case m := <-answers:
			up = m.Data[0] == 3
		case <-time.After(100 * time.Millisecond): // the route may not be up yet: ping again
		case <-ctx.Done():
			return "", errors.New("the node never answered over the route")
		}
	}
	// A claim on a client ID (PROTOCOL.md 21.5): the node answers each,
	// and keeps nothing of it.
	claim := func(n int) {
		var client wire.ID
		binary.BigEndian.PutUint64(client[8:], uint64(n))
		body := binary.BigEndian.AppendUint64(nil, uint64(n+1))
		body = append(body, make([]byte, 16)...) // channel
		body = append(body, client[:]...)
		link(10, append(body, 0))
	}
	var channels uint64
	var states, phantoms, claims int
	for ctx.Err() == nil {
		state(channels, 16<<10)
		channels += 16 << 10
		for range 200 {
			state(uint64(states%64), 1)
			states++
		}
		for range 200 {
			claim(claims)
			claims++
		}
		answer() // the claims' answers, before they fill the channel
		for range 200 {
			_ = nc.Publish("socketbus.atk.node", fmt.Appendf(nil, "ghost%d 0123456789abcdef", phantoms))
			phantoms++
		}
		answer()
		_ = nc.FlushTimeout(time.Second) // at the pace NATS takes them
	}
	return fmt.Sprintf("%d channels named, %d small states, %d phantom nodes, %d client ID claims", channels, states, phantoms, claims), nil
}
