// Command gopeer is the Go side of the TypeScript client's gather tests: a
// Go sender that gathers or publishes, and prints what came back as JSON,
// for test/gather.test.mjs (which builds it with go build). The CLI's
// receive --exec plays the Go members.
//
//	gopeer gather  --server ADDR --channel NAME --body TEXT [--timeout D] [--header K:V]
//	gopeer publish --server ADDR --channel NAME --body TEXT [--timeout D]
//	gopeer headers
//
// gather prints one JSON object per reply ({"from", "body", "headers",
// "code", "remoteCode", "message"}), then {"end": true}; publish prints
// {"took": N}. A failed gather or publish prints {"error", "code"} and
// exits 1. headers prints, for every version 0-4, type 0-5 and flags
// 0-0x1ff, the code with which the Go codec (wire.ParseHeader) refuses the
// header, 0 when it accepts it: the TypeScript codec must agree.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// reply is one member's outcome, as the tests read it.
type reply struct {
	From       string              `json:"from"`
	Body       string              `json:"body"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Code       string              `json:"code,omitempty"`
	RemoteCode string              `json:"remoteCode,omitempty"`
	Message    string              `json:"message,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gopeer gather|publish --server ADDR --channel NAME --body TEXT")
		os.Exit(2)
	}
	mode := os.Args[1]
	if mode == "headers" {
		headerVerdicts()
		return
	}
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	server := fs.String("server", "", "server address")
	channel := fs.String("channel", "", "channel name")
	body := fs.String("body", "", "request body")
	timeout := fs.Duration("timeout", 10*time.Second, "the gather's deadline")
	header := fs.String("header", "", "a request header, Key:Value")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := socketbus.Dial(ctx, *server, socketbus.ChannelFromName(*channel))
	if err != nil {
		fail(err)
	}
	defer c.Close()
	var opts []socketbus.CallOption
	if k, v, ok := strings.Cut(*header, ":"); ok {
		opts = append(opts, socketbus.WithHeader(socketbus.Header{k: {v}}))
	}
	out := json.NewEncoder(os.Stdout)
	switch mode {
	case "gather":
		replies, err := c.Gather(ctx, []byte(*body), opts...)
		if err != nil {
			fail(err)
		}
		for _, r := range replies {
			_ = out.Encode(replyOf(r))
		}
		_ = out.Encode(map[string]bool{"end": true})
	case "publish":
		n, err := c.Publish(ctx, []byte(*body), opts...)
		if err != nil {
			fail(err)
		}
		_ = out.Encode(map[string]int{"took": n})
	default:
		fmt.Fprintf(os.Stderr, "gopeer: unknown mode %q\n", mode)
		os.Exit(2)
	}
}

// replyOf turns a Reply into its JSON form.
func replyOf(r socketbus.Reply) reply {
	out := reply{From: r.From.String(), Body: string(r.Body), Headers: r.Header}
	if r.Err != nil {
		out.Code, out.Message = codeOf(r.Err), r.Err.Error()
		var re *socketbus.RemoteError
		if errors.As(r.Err, &re) {
			out.RemoteCode, out.Message = re.Code, re.Message
		}
	}
	return out
}

// codeOf names the error's protocol code, as the TypeScript client does.
func codeOf(err error) string {
	var re *socketbus.RemoteError
	switch {
	case errors.As(err, &re):
		return "remote"
	case errors.Is(err, socketbus.ErrPeerGone):
		return "peer_gone"
	case errors.Is(err, socketbus.ErrTimeout):
		return "timeout"
	case errors.Is(err, socketbus.ErrNoPeers):
		return "no_peers"
	case errors.Is(err, socketbus.ErrLimit):
		return "limit"
	case errors.Is(err, socketbus.ErrTooLarge):
		return "too_large"
	}
	return "other"
}

// fail prints err as JSON and exits 1.
func fail(err error) {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error(), "code": codeOf(err)})
	os.Exit(1)
}

// headerVerdicts prints [version, type, flags, code] for every header of
// versions 0-4, types 0-5 and flags 0-0x1ff (final set, no payload), as
// one JSON array: code 0 when wire.ParseHeader accepts the header.
func headerVerdicts() {
	var out [][4]int
	b := make([]byte, wire.HeaderSize)
	for v := range 5 {
		for t := range 6 {
			for f := range 0x200 {
				h := wire.Header{Version: uint8(v), Type: wire.FrameType(t), Flags: wire.Flags(f), Final: true}
				wire.PutHeader(b, &h)
				code := 0
				if _, _, err := wire.ParseHeader(b); err != nil {
					var we *wire.Error
					if !errors.As(err, &we) {
						fail(err)
					}
					code = int(we.Code)
				}
				out = append(out, [4]int{v, t, f, code})
			}
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
