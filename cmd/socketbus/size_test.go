package main

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"4096", 4096}, {"64KiB", 64 << 10}, {"16MiB", 16 << 20}, {"1GiB", 1 << 30},
		{"2K", 2 << 10}, {"3M", 3 << 20}, {"100B", 100}, {" 5 MiB ", 5 << 20},
		{"4KB", 4 << 10}, {"2MB", 2 << 20}, {"1GB", 1 << 30}, {"1TB", 1 << 40}, {"1TiB", 1 << 40}, {"2T", 2 << 40},
	}
	for _, tt := range tests {
		var b byteSize
		if err := b.Set(tt.in); err != nil || int64(b) != tt.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tt.in, b, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "1.5MiB", "-1", "12XB", "9999999999GiB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil error, want one", bad)
		}
	}
	for _, tt := range []struct {
		n    byteSize
		want string
	}{{0, "0"}, {1000, "1000"}, {64 << 20, "64MiB"}, {3 << 10, "3KiB"}} {
		if got := tt.n.String(); got != tt.want {
			t.Errorf("byteSize(%d).String() = %q, want %q", int64(tt.n), got, tt.want)
		}
	}
	if got := formatBytes(1536); got != "1.5 KiB" {
		t.Errorf("formatBytes(1536) = %q, want %q", got, "1.5 KiB")
	}
}
