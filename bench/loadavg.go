package main

import (
	"os"
	"strings"
)

// loadAverage returns the machine's 1-, 5- and 15-minute load averages as
// the kernel reports them, or "unknown" where /proc/loadavg is missing.
// Other work on the machine skews every figure; the table notes the load.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
