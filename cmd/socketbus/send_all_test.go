package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/socketbus/socketbus"
)

func TestReadWhole(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		size, limit int64
		tooLarge    bool
	}{
		{"no limit", strings.Repeat("x", 5000), -1, 0, false},
		{"at the limit", "12345", -1, 5, false},
		{"known size over", "123456", 6, 5, true},
		{"unknown size over", "123456", -1, 5, true},
		{"empty", "", 0, 5, false},
	}
	for _, tt := range tests {
		got, err := readWhole(strings.NewReader(tt.body), tt.size, tt.limit)
		switch {
		case tt.tooLarge && !errors.Is(err, socketbus.ErrTooLarge):
			t.Errorf("%s: err %v, want ErrTooLarge", tt.name, err)
		case !tt.tooLarge && (err != nil || string(got) != tt.body):
			t.Errorf("%s: %q, %v; want the body whole", tt.name, abbreviate(string(got)), err)
		}
	}
}

func TestReplyText(t *testing.T) {
	id := socketbus.ChannelFromName("member")
	tests := []struct {
		name    string
		r       socketbus.Reply
		include bool
		want    string
	}{
		{"a newline added", socketbus.Reply{From: id, Body: []byte("hi")}, false, "== " + id.String() + "\nhi\n"},
		{"its own newline", socketbus.Reply{From: id, Body: []byte("hi\n")}, false, "== " + id.String() + "\nhi\n"},
		{"empty", socketbus.Reply{From: id, Body: []byte{}}, false, "== " + id.String() + "\n"},
		{"headers", socketbus.Reply{From: id, Header: socketbus.Header{"B": {"2"}, "A": {"1"}}, Body: []byte("x")}, true,
			"== " + id.String() + "\nA: 1\nB: 2\n\nx\n"},
		{"headers left out", socketbus.Reply{From: id, Header: socketbus.Header{"A": {"1"}}, Body: []byte("x")}, false,
			"== " + id.String() + "\nx\n"},
		{"failed", socketbus.Reply{From: id, Err: &socketbus.RemoteError{Code: "busy", Message: "try\nlater"}}, false,
			"== " + id.String() + " error: remote error busy: try | later\n"},
		{"left", socketbus.Reply{From: id, Err: fmt.Errorf("%w (it left)", socketbus.ErrPeerGone)}, false,
			"== " + id.String() + " error: peer disconnected (it left)\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeReplyText(&b, tt.r, tt.include)
		if b.String() != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, b.String(), tt.want)
		}
	}
}

func TestReplyJSON(t *testing.T) {
	id := socketbus.ChannelFromName("member")
	tests := []struct {
		name string
		r    socketbus.Reply
		want string
	}{
		{"text", socketbus.Reply{From: id, Body: []byte("héllo")},
			`{"from":"` + id.String() + `","outcome":"completed","body":"héllo"}`},
		{"empty", socketbus.Reply{From: id},
			`{"from":"` + id.String() + `","outcome":"completed","body":""}`},
		{"binary", socketbus.Reply{From: id, Header: socketbus.Header{"K": {"v"}}, Body: []byte{0xff, 0xfe}},
			`{"from":"` + id.String() + `","outcome":"completed","header":{"K":["v"]},"body":"//4=","body_base64":true}`},
		{"remote", socketbus.Reply{From: id, Err: &socketbus.RemoteError{Code: "busy", Message: "later"}},
			`{"from":"` + id.String() + `","outcome":"remote_error","error":"remote error busy: later","code":"busy"}`},
		{"timeout", socketbus.Reply{From: id, Err: fmt.Errorf("%w (after 1s)", socketbus.ErrTimeout)},
			`{"from":"` + id.String() + `","outcome":"timeout","error":"request timed out (after 1s)"}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(newReplyJSON(tt.r, replyOutcome(tt.r.Err)))
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestReplyOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                  "completed",
		&socketbus.RemoteError{Message: "x"}: "remote_error",
		socketbus.ErrPeerGone:                "peer_gone",
		fmt.Errorf("x: %w", socketbus.ErrTimeout): "timeout",
		socketbus.ErrTooLarge:                     "too_large",
		socketbus.ErrServerClosed:                 "server_closed",
		socketbus.ErrCancelled:                    "cancelled",
		socketbus.ErrLimit:                        "rejected",
		errors.New("other"):                       "error",
	} {
		if got := replyOutcome(err); got != want {
			t.Errorf("replyOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestPartialError(t *testing.T) {
	err := &partialError{replies: 5, failed: map[string]int{"timeout": 1, "peer_gone": 2}}
	if got, want := err.Error(), "3 of 5 members did not answer: peer_gone 2, timeout 1"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
