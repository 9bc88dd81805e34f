//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"syscall"
	"time"
)

// processUsage returns, from one getrusage (RUSAGE_SELF) call, the CPU
// time the process has used, user and system together, and the context
// switches of its threads, voluntary and involuntary; both are -1 where
// they cannot be read.
func processUsage() (cpu time.Duration, switches int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1, -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), int64(ru.Nvcsw + ru.Nivcsw)
}
