// Package attack holds the attack suite: tests that build the socketbus
// binary, run `socketbus serve` as a process on loopback, and attack it
// over raw TCP with frames built by internal/wire, while a bystander pair
// of clients on another channel keeps completing requests. Each attack
// runs against a fresh server process, so that the peak resident memory
// read from /proc (VmHWM) is that attack's.
//
// The package has no code of its own: everything is in its tests.
//
//	go test -count=1 -v ./internal/attack
package attack
