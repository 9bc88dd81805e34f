package main

import "testing"

func TestWithDefaultPort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1:7411"},
		{"127.0.0.1:", "127.0.0.1:7411"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		{"bus.example", "bus.example:7411"},
		{"[::1]", "[::1]:7411"},
		{"::1", "[::1]:7411"},
		{"[::1]:9000", "[::1]:9000"},
		{":9000", ":9000"},
		{"[::1", "[::1"},
		{"a:b:c", "a:b:c"},
		{"", ""},
	} {
		if got := withDefaultPort(tt.in, "7411"); got != tt.want {
			t.Errorf("withDefaultPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
