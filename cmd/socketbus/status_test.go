package main

import (
	"strings"
	"testing"

	"github.com/socketbus/socketbus"
)

func TestStatusTable(t *testing.T) {
	rep := newStatusReport(fixedStats(), true, func(id socketbus.ID) string {
		if id == socketbus.ChannelFromName("a") {
			return "a"
		}
		return ""
	})
	var b strings.Builder
	if err := writeStatus(&b, &rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"a (" + socketbus.ChannelFromName("a").String() + ")",
		socketbus.ChannelFromName("b").String(),
		"total (2 channels)",
		"server draining: 3 connections, 4 requests in flight",
		"completed 5, no_peers 2, timeout 1",
		"gathers: 2, publishes: 1, their members: completed 6, remote_error 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
}
