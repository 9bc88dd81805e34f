package main

import (
	"net/textproto"
	"testing"
)

func TestBenchHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 3, 5} {
		fields := benchHeaders(n)
		if len(fields) != n {
			t.Fatalf("benchHeaders(%d): got %d fields, want %d", n, len(fields), n)
		}
		seen := map[string]bool{}
		for _, f := range fields {
			if f.key != textproto.CanonicalMIMEHeaderKey(f.key) {
				t.Errorf("benchHeaders(%d): key %q is not canonical", n, f.key)
			}
			if seen[f.key] {
				t.Errorf("benchHeaders(%d): key %q twice; responders count keys", n, f.key)
			}
			seen[f.key] = true
		}
	}
}
