package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// interrupted is the cause of the context interruptContext returns, once a
// signal has cancelled it.
type interrupted struct{ sig os.Signal }

func (e *interrupted) Error() string { return "interrupted by " + signalName(e.sig) }

// exitCode is the status of a process the signal ended: 128 plus the
// signal's number, 130 for SIGINT and 143 for SIGTERM.
func (e *interrupted) exitCode() int {
	if n, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitOther
}

// signalName names sig as a shell user knows it.
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// interruptContext returns a context cancelled, with an *interrupted
// cause, by the first SIGINT or SIGTERM. From then on the signals have
// their default action back, so a second one ends the process at once.
// stop releases the signals.
func interruptContext() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			cancel(&interrupted{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(nil)
		<-done
	}
}
