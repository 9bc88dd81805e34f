package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/socketbus/socketbus"
)

func TestTokens(t *testing.T) {
	const file = `# who may join what
orders   s3cret
orders   other-token

billing  b1ll
`
	table, err := parseTokens(strings.NewReader(file))
	if err != nil {
		t.Fatalf("parseTokens: %v", err)
	}
	orders, billing := socketbus.ChannelFromName("orders"), socketbus.ChannelFromName("billing")
	tests := []struct {
		channel socketbus.ID
		token   string
		ok      bool
	}{
		{orders, "s3cret", true},
		{orders, "other-token", true},
		{billing, "b1ll", true},
		{orders, "b1ll", false},
		{orders, "s3cre", false},
		{orders, "s3cret ", false},
		{orders, "", false},
		{socketbus.ChannelFromName("unlisted"), "s3cret", false},
	}
	for _, tt := range tests {
		err := table.authenticate(socketbus.ID{}, tt.channel, tt.token)
		if got := err == nil; got != tt.ok {
			t.Errorf("authenticate(%s, %q) = %v, want ok %v", table.name(tt.channel), tt.token, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errBadToken) {
			t.Errorf("authenticate error %v, want errBadToken", err)
		}
	}
	if got := table.name(orders); got != "orders" {
		t.Errorf("name(orders) = %q, want %q", got, "orders")
	}
}

func TestTokensRejectsBadLines(t *testing.T) {
	for _, file := range []string{"orders\n", "orders s3cret extra\n", "ok tok\nlonely\n"} {
		if _, err := parseTokens(strings.NewReader(file)); err == nil {
			t.Errorf("parseTokens(%q) = nil error, want one", file)
		}
	}
}
