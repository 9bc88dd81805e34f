package main

import (
	"context"
	"testing"
	"time"
)

// TestClusterSystem runs round trips through the three-node bus: they are
// answered on node 3 for requesters on node 1, node 2 carries no client
// frames, and Close leaves no goroutine of the bus's NATS behind.
func TestClusterSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := natsGoroutines()
	response := make([]byte, 128)
	dep, err := clusterSystem{}.Start(ctx, shape{Requesters: 2, Responders: 1, RequestSize: 128, Response: response})
	if err != nil {
		t.Fatal(err)
	}
	d := dep.(*clusterDeployment)
	lats, err := drive(ctx, d.Requesters(), make([]byte, 128), len(response), 20, time.Time{})
	if err != nil {
		d.Close()
		t.Fatal(err)
	}
	if len(lats) != 40 {
		t.Errorf("%d round trips, want 40", len(lats))
	}
	var frames [clusterNodes]int64
	for i, s := range d.servers {
		st := s.srv.Stats()
		frames[i] = st.FramesIn + st.FramesOut
	}
	if frames[0] == 0 || frames[1] != 0 || frames[2] == 0 {
		t.Errorf("frames per node %v: want requesters' on node 1, responders' on node 3, none on node 2", frames)
	}
	if got := d.Frames(); got != frames[0]+frames[1]+frames[2] {
		t.Errorf("Frames() = %d, want the three servers' %v together", got, frames)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := waitNATSGone(before, 0); err != nil {
		t.Error(err)
	}
}
