package main

import (
	"bytes"
	"fmt"
	"runtime"
)

// ownFrames mark a goroutine as started by this program or by socketbus:
// the bench's own functions and the library's. nats-server and nats.go end
// some goroutines asynchronously after Shutdown and Close (closed-client
// bookkeeping, read loops), so their goroutines are not checked.
var ownFrames = [][]byte{[]byte("\nmain."), []byte("\ngithub.com/socketbus/socketbus")}

// strayGoroutines returns the stacks of the goroutines, other than the
// caller's, that run code of this program or of socketbus. Called once a
// deployment has closed, it must find none: Close waits for everything a
// system started.
func strayGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var stray []string
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the caller
		}
		for _, f := range ownFrames {
			if bytes.Contains(g, f) {
				stray = append(stray, string(g))
				break
			}
		}
	}
	return stray
}

// checkStray returns an error listing stray goroutines, if any.
func checkStray() error {
	stray := strayGoroutines()
	if len(stray) == 0 {
		return nil
	}
	return fmt.Errorf("%d goroutine(s) still running after Close; the first:\n%s", len(stray), stray[0])
}
