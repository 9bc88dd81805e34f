package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socketbus/socketbus"
)

// fanOutHelp is the part of send's help about --all and --publish.
const fanOutHelp = `--all sends the request to every other member of the channel present when
the server accepts it, on every node of the bus (a gather), and prints each
reply as it arrives, with its member's client ID. Every other client joined
to the channel is a member, whether it receives or not: another send
running on the channel is one, and its reply is an error (it left, or the
timeout passed, without taking the request). By default one block per
reply: a line "== ID" then the body (a newline added when it lacks one), or
a line "== ID error: WHY" for a member that failed, left or ran out of
time; with --include the reply's headers, as "Key: value" lines and an
empty line, come first in its block, on stdout. With --json, one JSON
object a line per reply:
  {"from": ID, "outcome": "completed", "header": {"Key": ["value"]}, "body": "..."}
  {"from": ID, "outcome": "remote_error", "error": "...", "code": "not_found"}
"outcome" is completed, remote_error (the member failed the request;
"code" is its error code, if it gave one), peer_gone (it left first),
timeout (the deadline passed first), too_large, server_closed, cancelled,
rejected (a server limit) or error. "body" is the body as a string when
it is valid UTF-8; otherwise it is base64 (RFC 4648, padded) and
"body_base64" is true. "header" is there when the reply had headers. send --all exits 0 when every member
answered, 11 when any did not (each reply says why; stderr says how many),
and otherwise as any send: 3 no peers, 9 more members than the server's
--max-gather-members, and so on.

--publish delivers the request to every other member present, wanting no
answers (what they answer is dropped; receive --exec runs its command as
for any request), and prints how many took it, once each has taken it or
left ({"took": N} with --json). A member that has neither by the timeout is
not counted; that is not a failure.

Either way the body is read whole before it is sent, at most the server's
--max-message-bytes of it (over it, status 7), and reaches each member once.`

// partialError says that some members of a gather did not answer: send
// --all exits exitPartial.
type partialError struct {
	replies int
	failed  map[string]int // failed replies by outcome
}

func (e *partialError) Error() string {
	n := 0
	parts := make([]string, 0, len(e.failed))
	for _, o := range slices.Sorted(maps.Keys(e.failed)) {
		n += e.failed[o]
		parts = append(parts, fmt.Sprintf("%s %d", o, e.failed[o]))
	}
	return fmt.Sprintf("%d of %d members did not answer: %s", n, e.replies, strings.Join(parts, ", "))
}

// runFanOut runs send --all or --publish.
func (o *sendOptions) runFanOut(ctx context.Context, s *streams, hasData bool, channel socketbus.ID, name string) error {
	switch {
	case o.out != "" && o.out != "-":
		return usagef("--out does not go with --all or --publish: the replies go to stdout")
	case o.progress:
		return usagef("--progress does not go with --all or --publish")
	case o.publish && o.include:
		return usagef("--include needs replies: it goes with --all, not --publish")
	}
	src, size, err := o.body(s, hasData)
	if err != nil {
		return err
	}
	defer src.Close()
	c, err := o.connect(ctx, s, channel)
	if err != nil {
		return err
	}
	defer c.Close()
	where := func(err error) error { return fmt.Errorf("%s at %s: %w", name, o.client.server, err) }
	body, err := readWhole(src, size, c.MaxMessageBytes())
	if err != nil {
		return where(err)
	}

	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	opts := []socketbus.CallOption{socketbus.WithHeader(o.headers.h)}
	if o.publish {
		var took int
		publish := func() error {
			var err error
			took, err = c.Publish(ctx, body, opts...)
			return err
		}
		err = o.retryNoPeers(ctx, publish(), publish)
		if err != nil {
			return where(err)
		}
		if o.json {
			_, err = fmt.Fprintf(s.out, "{\"took\":%d}\n", took)
		} else {
			_, err = fmt.Fprintln(s.out, took)
		}
		return err
	}

	p := &replyPrinter{w: s.out, json: o.json, include: o.include, failed: make(map[string]int)}
	gather := func() error { return c.GatherFunc(ctx, body, p.print, opts...) }
	err = o.retryNoPeers(ctx, gather(), gather)
	switch {
	case err != nil:
		return where(err)
	case p.err != nil:
		return fmt.Errorf("writing the replies: %w", p.err)
	case len(p.failed) > 0:
		return where(&partialError{replies: p.replies, failed: p.failed})
	}
	return nil
}

// retryNoPeers returns err, the error of a first try, unless it is
// ErrNoPeers and the server was down when send started: a server that has
// just come back may still be waiting for the channel's members to
// reconnect, so again tries again, for up to 3 s, while it fails so.
func (o *sendOptions) retryNoPeers(ctx context.Context, err error, again func() error) error {
	for grace := time.Now().Add(3 * time.Second); errors.Is(err, socketbus.ErrNoPeers) && o.client.waited && time.Now().Before(grace); {
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		err = again()
	}
	return err
}

// readWhole reads the whole body from r: size bytes when known (-1 when
// not), and at most limit bytes when limit is not 0.
func readWhole(r io.Reader, size, limit int64) ([]byte, error) {
	tooLarge := func(what string) error {
		return fmt.Errorf("the body of %s is over the server's limit of %s (its --max-message-bytes); nothing was sent: %w",
			what, formatBytes(limit), socketbus.ErrTooLarge)
	}
	if limit > 0 && size > limit {
		return nil, tooLarge(formatBytes(size))
	}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	var b bytes.Buffer
	if size > 0 {
		b.Grow(int(size))
	}
	if _, err := b.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if limit > 0 && int64(b.Len()) > limit {
		return nil, tooLarge("more than " + formatBytes(limit))
	}
	return b.Bytes(), nil
}

// replyPrinter writes a gather's replies as they come, as text blocks or
// JSON lines, and counts those that are failures.
type replyPrinter struct {
	w       io.Writer
	json    bool
	include bool

	replies int
	failed  map[string]int // failed replies by outcome
	err     error          // the first write error
}

// print writes one reply; it is GatherFunc's callback, and ends the gather
// when stdout fails.
func (p *replyPrinter) print(r socketbus.Reply) bool {
	p.replies++
	outcome := replyOutcome(r.Err)
	if r.Err != nil {
		p.failed[outcome]++
	}
	var b bytes.Buffer
	if p.json {
		line, err := json.Marshal(newReplyJSON(r, outcome))
		if err != nil {
			p.err = err
			return false
		}
		b.Write(line)
		b.WriteByte('\n')
	} else {
		writeReplyText(&b, r, p.include)
	}
	if _, err := p.w.Write(b.Bytes()); err != nil {
		p.err = err
		return false
	}
	return true
}

// writeReplyText writes r as a text block: "== ID" and the body, or
// "== ID error: WHY"; with include, the headers between.
func writeReplyText(b *bytes.Buffer, r socketbus.Reply, include bool) {
	fmt.Fprintf(b, "== %s", r.From)
	if r.Err != nil {
		fmt.Fprintf(b, " error: %s", reasonLine(r.Err))
	}
	b.WriteByte('\n')
	if include {
		printHeaders(b, r.Header)
	}
	b.Write(r.Body)
	if len(r.Body) > 0 && r.Body[len(r.Body)-1] != '\n' {
		b.WriteByte('\n')
	}
}

// replyJSON is one line of send --all --json.
type replyJSON struct {
	From       socketbus.ID     `json:"from"`
	Outcome    string           `json:"outcome"`
	Header     socketbus.Header `json:"header,omitempty"`
	Body       *string          `json:"body,omitempty"` // nil when the member did not answer
	BodyBase64 bool             `json:"body_base64,omitempty"`
	Error      string           `json:"error,omitempty"`
	Code       string           `json:"code,omitempty"`
}

// newReplyJSON returns the JSON form of r.
func newReplyJSON(r socketbus.Reply, outcome string) replyJSON {
	j := replyJSON{From: r.From, Outcome: outcome, Header: r.Header}
	if r.Err != nil {
		j.Error = reasonLine(r.Err)
		var remote *socketbus.RemoteError
		if errors.As(r.Err, &remote) {
			j.Code = remote.Code
		}
		return j
	}
	body := string(r.Body)
	if !utf8.Valid(r.Body) {
		body, j.BodyBase64 = base64.StdEncoding.EncodeToString(r.Body), true
	}
	j.Body = &body
	return j
}

// replyOutcome names how a member's part of a gather ended, with the
// names the server's stats count them by.
func replyOutcome(err error) string {
	var remote *socketbus.RemoteError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &remote):
		return "remote_error"
	case errors.Is(err, socketbus.ErrPeerGone):
		return "peer_gone"
	case errors.Is(err, socketbus.ErrTimeout):
		return "timeout"
	case errors.Is(err, socketbus.ErrTooLarge):
		return "too_large"
	case errors.Is(err, socketbus.ErrServerClosed):
		return "server_closed"
	case errors.Is(err, socketbus.ErrCancelled):
		return "cancelled"
	case errors.Is(err, socketbus.ErrLimit):
		return "rejected"
	}
	return "error"
}
