package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/socketbus/socketbus"
)

// receiveOptions are receive's flags.
type receiveOptions struct {
	client      clientFlags
	channel     channelFlags
	exec        string
	concurrency int
	count       int
}

func newReceiveCommand(s *streams) *cobra.Command {
	var o receiveOptions
	cmd := &cobra.Command{
		Use:   "receive",
		Short: "Answer requests on a channel, with a shell command or by printing them",
		Long: `Answer the requests sent on a channel.

With --exec CMD, each request runs CMD through sh -c: the request body is its
stdin and its stdout streams back as the response. A command that exits
non-zero fails the request: the sender gets a remote error (exit status 5)
carrying the command's stderr. Output is held until the command exits or
writes 64 KiB, so a failing command's error arrives clean; past that the
output streams, and a later failure cuts the response short with the error.
The command sees SOCKETBUS_REQUEST_ID and SOCKETBUS_FROM in its environment,
and is killed with its process group if the request ends first (its timeout
passes, its sender cancels or goes away). --concurrency runs that many at once.

The request's headers are in the command's environment too, one variable per
key: SOCKETBUS_HEADER_ and the key upper-cased with every character but
letters and digits made "_" (Trace-Id is SOCKETBUS_HEADER_TRACE_ID); several
values of a key are joined by ", ". A failing command gives the request an
error code (the sender's RemoteError.Code) with a first line of stderr of
the form "code: not_found"; the rest of stderr is the message.

Without --exec, receive writes the body of one request (--count more) to
stdout and answers it with an empty response. The request's headers, if it
has any, go to stderr first, as "Key: value" lines and an empty line.

Once joined, receive says so on stderr. --count N stops after N requests;
SIGINT or SIGTERM stops taking requests and lets those in hand finish.`,
		Example: `  # Upper-case whatever is sent on channel "upper", forever:
  socketbus receive --channel upper --exec 'tr a-z A-Z'

  # Four at a time, through a script:
  socketbus receive --channel thumbnails --concurrency 4 --exec './thumbnail.sh'

  # Take one request and save its body:
  socketbus receive --channel uploads > upload.bin`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("count") && o.exec == "" {
				o.count = 1
			}
			return o.run(cmd.Context(), s)
		}),
	}
	fs := cmd.Flags()
	o.client.register(fs)
	o.channel.register(fs)
	fs.StringVarP(&o.exec, "exec", "e", "", "answer each request by running `command` through sh -c")
	fs.IntVarP(&o.concurrency, "concurrency", "n", 1, "requests to handle at once (with --exec)")
	fs.IntVar(&o.count, "count", 0, "stop after this many requests (0: never; without --exec the default is 1)")
	cmd.MarkFlagsMutuallyExclusive("channel", "channel-id")
	return cmd
}

// run receives and answers requests until the count is reached, ctx ends
// or the connection fails.
func (o *receiveOptions) run(ctx context.Context, s *streams) error {
	channel, name, err := o.channel.resolve()
	if err != nil {
		return err
	}
	switch {
	case o.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case o.count < 0:
		return usagef("--count cannot be negative")
	case o.exec == "" && o.concurrency > 1:
		return usagef("--concurrency needs --exec: bodies written to stdout would mix")
	}
	o.client.events, o.client.eventsName = s.err, "socketbus receive"
	o.client.channelName = o.channel.name
	c, err := o.client.dial(ctx, channel)
	if err != nil {
		return err
	}
	// Close writes what is still queued (the end of the last answer)
	// before it closes the connection.
	defer c.Close()
	fmt.Fprintf(s.err, "socketbus receive: joined %s at %s, waiting for requests\n", name, o.client.server)

	handle := func(req *socketbus.Request) error { return printRequest(req, s.out, s.err) }
	if o.exec != "" {
		handle = func(req *socketbus.Request) error {
			if err := execRequest(o.exec, req); err != nil {
				// The sender has heard; note it here and carry on.
				fmt.Fprintf(s.err, "socketbus receive: request %s: %s\n", req.ID, reasonLine(err))
			}
			return nil
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		cancel()
	}

	// With --count, exactly count requests are taken. Serve's workers each
	// wait in a Receive for one; spare is how many more Receives they may
	// make. A worker that may make none parks in its handler, its request
	// answered, until the last request has been handled.
	workers := o.concurrency
	if o.count > 0 {
		workers = min(workers, o.count)
	}
	var spare, handled atomic.Int64
	spare.Store(int64(o.count - workers))
	h := socketbus.HandlerFunc(func(req *socketbus.Request) {
		if err := handle(req); err != nil {
			fail(err)
			return
		}
		switch {
		case o.count == 0:
		case handled.Add(1) == int64(o.count):
			cancel()
		case spare.Add(-1) < 0:
			<-ctx.Done()
		}
	})
	err = c.Serve(ctx, h, socketbus.WithConcurrency(workers))
	if firstErr != nil {
		return firstErr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s at %s: %w", name, o.client.server, err)
	}
	return nil
}

// printRequest writes req's body to w and answers with an empty response;
// if the body cannot be written whole, it fails the request instead.
func printRequest(req *socketbus.Request, w, stderr io.Writer) error {
	printHeaders(stderr, req.Header)
	if _, err := io.Copy(w, req.Body); err != nil {
		return failRequest(req, fmt.Errorf("receiving the body: %w", err))
	}
	return respond(req, nil)
}
