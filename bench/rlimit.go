//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard limit:
// the scaling workloads hold up to 20,000 connections, one descriptor each
// in the bench process and in the server's. It returns the soft and hard
// limits it leaves, or zeros where they cannot be read.
func raiseFileLimit() (soft, hard uint64) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0
	}
	if l.Cur < l.Max {
		raised := l
		raised.Cur = l.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			l = raised
		}
	}
	return l.Cur, l.Max
}
