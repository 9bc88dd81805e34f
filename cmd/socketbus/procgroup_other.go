//go:build !unix

package main

import "os/exec"

// killProcessGroup leaves cmd as it is: without process groups,
// cancellation kills the shell alone.
func killProcessGroup(*exec.Cmd) {}
