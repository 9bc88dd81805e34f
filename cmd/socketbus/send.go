package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socketbus/socketbus"
)

// sendOptions are send's flags.
type sendOptions struct {
	client     clientFlags
	channel    channelFlags
	data       string
	file       string
	out        string
	timeout    time.Duration
	progress   bool
	noProgress bool
	headers    headerFlags
	include    bool
	all        bool // --all: gather every member's reply
	publish    bool // --publish: deliver to every member, wanting no answers
	json       bool // --json: print --all's replies, or --publish's count, as JSON
}

func newSendCommand(s *streams) *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send one request and write its response to stdout (--all: every member's reply)",
		Long: `Send one request on a channel and write its response to stdout.

The body is read from stdin, unless --data or --file gives it; typed on a
terminal, it ends with Ctrl-D at the start of a line. The response streams to
stdout, or to --out FILE, which is written beside FILE under a temporary
name and renamed when the response is whole: a failed send leaves no
partial file. Bodies of any size stream through. When stderr is a terminal,
progress bars for bodies and responses over 1 MiB go to it (the response's
only when it does not go to the same terminal); --progress and
--no-progress decide instead.

The server announces its --max-message-bytes when send joins: a body whose
size is known (--data, --file, stdin redirected from a file) and over it
fails at once, status 7, with nothing sent.

On failure send exits non-zero with one line on stderr, and the exit status
says which failure it was: 3 no peers, 4 timeout, 5 remote error, 6 server
unreachable or not a bus port, 7 body too large, 8 unauthorized, 11 not
every member answered (--all), 130 interrupted by Ctrl-C (see "socketbus
help").

-H 'Key: value' sends a header with the request (repeat it for more, or for
several values of one key); the receiver's handler reads them. --include
prints the response's headers to stderr, as "Key: value" lines and an empty
line, before the body (after a failure, those the handler gave with it). A
remote error's code, when the receiver gave one, is in the error line.

` + fanOutHelp,
		Example: `  # The body from stdin:
  echo 'hello, bus' | socketbus send --channel upper

  # The body from a flag, with a 5 s timeout:
  socketbus send --channel upper --data 'hello, bus' --timeout 5s

  # With headers, printing the response's:
  socketbus send --channel orders --data '{"id": 7}' -H 'Content-Type: application/json' -H 'Trace-Id: 4bf92f35' --include

  # A file in, a file out, on another server:
  socketbus send --server bus.example:7411 --tls --channel resize --file photo.jpg --out small.jpg

  # Ask every member of a channel, one JSON line per reply:
  socketbus send --channel health --all --json --data ping --timeout 5s

  # Tell every member, and print how many took it:
  socketbus send --channel config --publish --file settings.json`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), s, cmd.Flags().Changed("data"))
		}),
	}
	fs := cmd.Flags()
	o.client.register(fs)
	o.channel.register(fs)
	fs.StringVarP(&o.data, "data", "d", "", "the request body (instead of stdin)")
	fs.StringVarP(&o.file, "file", "f", "", "read the request body from `file` (instead of stdin; - is stdin)")
	fs.StringVarP(&o.out, "out", "o", "", "write the response to `file` instead of stdout")
	fs.DurationVarP(&o.timeout, "timeout", "t", 0, "how long the request may take, end to end (0: the server's default)")
	fs.BoolVar(&o.progress, "progress", false, "show a progress bar on stderr, whatever the size and wherever stderr goes")
	fs.BoolVar(&o.noProgress, "no-progress", false, "never show a progress bar")
	fs.VarP(&o.headers, "header", "H", "send a header with the request (repeatable)")
	fs.BoolVarP(&o.include, "include", "i", false, "print the response's headers to stderr before the body (with --all: each reply's, in its block)")
	fs.BoolVar(&o.all, "all", false, "send to every other member of the channel and print each one's reply (a gather)")
	fs.BoolVar(&o.publish, "publish", false, "deliver to every other member of the channel, wanting no answers, and print how many took it")
	fs.BoolVar(&o.json, "json", false, "with --all, print each reply as a line of JSON; with --publish, the count")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	cmd.MarkFlagsMutuallyExclusive("all", "publish")
	cmd.MarkFlagsMutuallyExclusive("channel", "channel-id")
	cmd.MarkFlagsMutuallyExclusive("progress", "no-progress")
	return cmd
}

// run sends the request. hasData says whether --data was given, even empty.
func (o *sendOptions) run(ctx context.Context, s *streams, hasData bool) error {
	channel, name, err := o.channel.resolve()
	if err != nil {
		return err
	}
	if o.timeout < 0 {
		return usagef("--timeout cannot be negative")
	}
	if o.all || o.publish {
		return o.runFanOut(ctx, s, hasData, channel, name)
	}
	if o.json {
		return usagef("--json needs --all or --publish")
	}
	body, size, err := o.body(s, hasData)
	if err != nil {
		return err
	}
	defer body.Close()
	out, err := openOutput(o.out, s.out)
	if err != nil {
		return err
	}
	defer out.abort()

	c, err := o.connect(ctx, s, channel)
	if err != nil {
		return err
	}
	defer c.Close()

	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	if limit := c.MaxMessageBytes(); limit > 0 && size > limit {
		return fmt.Errorf("%s at %s: the body of %s is over the server's limit of %s (its --max-message-bytes); nothing was sent: %w",
			name, o.client.server, formatBytes(size), formatBytes(limit), socketbus.ErrTooLarge)
	}
	var (
		r    io.Reader = body
		w    io.Writer = out
		prog *sendProgress
	)
	if o.progress || (!o.noProgress && isTerminal(s.err)) {
		threshold := int64(progressThreshold)
		if o.progress {
			threshold = -1
		}
		toFile := o.out != "" && o.out != "-"
		shared := !toFile && isTerminal(s.out) && isTerminal(s.err)
		prog = &sendProgress{w: s.err, threshold: threshold, size: size, shared: shared}
		r, w = prog.reader(body), prog.writer(out)
	}
	var respHeader socketbus.Header
	opts := []socketbus.CallOption{socketbus.WithHeader(o.headers.h)}
	if o.include {
		opts = append(opts, socketbus.ResponseHeader(&respHeader))
		w = &headersFirst{w: w, stderr: s.err, h: &respHeader}
	}
	err = c.Send(ctx, r, w, opts...)
	if hasData && prog == nil {
		// A --data body can be sent again.
		err = o.retryNoPeers(ctx, err, func() error { return c.Send(ctx, strings.NewReader(o.data), w, opts...) })
	}
	if hf, ok := w.(*headersFirst); ok {
		hf.print() // a response without a body, or a failure
	}
	if err == nil {
		err = out.commit()
	} else {
		err = fmt.Errorf("%s at %s: %w", name, o.client.server, err)
	}
	if prog != nil {
		prog.finish(err == nil)
	}
	return err
}

// connect dials the server and joins channel, waiting for a server that
// is down or restarting: within the request's time when it has one, else
// within the connect timeout.
func (o *sendOptions) connect(ctx context.Context, s *streams, channel socketbus.ID) (*socketbus.Client, error) {
	o.client.waitFor = o.timeout
	if o.timeout == 0 {
		o.client.waitFor = o.client.connectTimeout
	}
	o.client.waitNotice = s.err
	o.client.channelName = o.channel.name
	return o.client.dial(ctx, channel)
}

// body opens the request body and returns its size, or -1 if unknown.
func (o *sendOptions) body(s *streams, hasData bool) (io.ReadCloser, int64, error) {
	switch {
	case hasData:
		return io.NopCloser(strings.NewReader(o.data)), int64(len(o.data)), nil
	case o.file != "" && o.file != "-":
		f, err := os.Open(o.file)
		if err != nil {
			return nil, 0, usagef("--file: %w", err)
		}
		return f, fileSize(f), nil
	}
	size := int64(-1)
	if f, ok := s.in.(*os.File); ok {
		size = fileSize(f)
	}
	if isTerminal(s.in) {
		// Someone typing may not know send is waiting for them.
		fmt.Fprintln(s.err, "socketbus send: reading the request body from stdin; end it with Ctrl-D (or give --data or --file)")
	}
	return io.NopCloser(s.in), size, nil
}

// fileSize returns the size of f if it is a regular file, else -1.
func fileSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return -1
	}
	return fi.Size()
}

// output is where the response goes: stdout, or a file that appears only
// when the whole response has arrived.
type output struct {
	io.Writer
	tmp  *os.File // nil for stdout
	path string
	done bool
}

// openOutput opens path for the response, or returns stdout when path is
// empty. A file is written beside path under a temporary name and renamed
// by commit.
func openOutput(path string, stdout io.Writer) (*output, error) {
	if path == "" || path == "-" {
		return &output{Writer: stdout}, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return nil, usagef("--out: %w", err)
	}
	return &output{Writer: tmp, tmp: tmp, path: path}, nil
}

// commit puts the finished response in place.
func (o *output) commit() error {
	if o.tmp == nil {
		return nil
	}
	o.done = true
	// CreateTemp made the file private; give it the usual mode of a new file.
	err := errors.Join(o.tmp.Chmod(0o644), o.tmp.Close(), os.Rename(o.tmp.Name(), o.path))
	if err != nil {
		os.Remove(o.tmp.Name())
		return fmt.Errorf("writing %s: %w", o.path, err)
	}
	return nil
}

// abort removes the partial response, unless commit ran.
func (o *output) abort() {
	if o.tmp == nil || o.done {
		return
	}
	o.tmp.Close()
	os.Remove(o.tmp.Name())
}

// headersFirst prints the response's headers to stderr before the first
// byte of its body goes to w: Send stores them in *h before it writes.
type headersFirst struct {
	w       io.Writer
	stderr  io.Writer
	h       *socketbus.Header
	printed bool
}

func (hf *headersFirst) Write(p []byte) (int, error) {
	hf.print()
	return hf.w.Write(p)
}

// print prints the headers, once.
func (hf *headersFirst) print() {
	if !hf.printed {
		hf.printed = true
		printHeaders(hf.stderr, *hf.h)
	}
}
