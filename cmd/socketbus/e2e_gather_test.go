//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestGatherEndToEnd runs the built binary: send --all gathers from three
// receive --exec processes, one failing with a code, and prints their
// replies as text and as JSON lines, exiting 11 since one did not answer;
// send --publish prints how many took it; a binary body is base64 in
// JSON; --include prints each reply's headers in its block; no peers,
// serve --max-gather-members and --max-message-bytes give their statuses;
// /metrics, /status and status count the gathers and their members.
func TestGatherEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil, "--monitor", "127.0.0.1:0", "--max-message-bytes", "1KiB", "--max-gather-members", "3")
	startReceiver(t, bin, srv, "--channel", "fleet", "--exec", "tr a-z A-Z")
	startReceiver(t, bin, srv, "--channel", "fleet", "--exec", "printf 'two:'; cat")
	startReceiver(t, bin, srv, "--channel", "fleet", "--exec", "cat >/dev/null; echo 'code: busy' >&2; echo 'try later' >&2; exit 1")
	send := func(stdin string, args ...string) result {
		t.Helper()
		return runCmd(t, bin, nil, stdin, append([]string{"send", "--server", srv.addr}, args...)...)
	}
	var gathers, publishes int // as the server should count them

	// The receivers' client IDs, from /connz.
	members := make(map[string]bool)
	res := runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor, "--conns", "--json")
	var connz connzReport
	if err := json.Unmarshal([]byte(res.stdout), &connz); err != nil {
		t.Fatalf("status --conns --json: %v\n%s", err, res.stdout)
	}
	for _, c := range connz.Connections {
		if c.ChannelName == "fleet" {
			members[c.Client] = true
		}
	}
	if len(members) != 3 {
		t.Fatalf("/connz lists %d clients on fleet, want 3: %+v", len(members), connz.Connections)
	}

	// text maps each member to its block after the "== ID" line's ID.
	var text map[string]string
	t.Run("text", func(t *testing.T) {
		res := send("", "--channel", "fleet", "--all", "--data", "hi")
		gathers++
		checkFailure(t, res, exitPartial, "1 of 3 members did not answer: remote_error 1")
		text = textBlocks(t, res.stdout)
		if !slices.Equal(slices.Sorted(maps.Keys(text)), slices.Sorted(maps.Keys(members))) {
			t.Fatalf("blocks from %v, want one from each receiver %v:\n%s", slices.Sorted(maps.Keys(text)), slices.Sorted(maps.Keys(members)), res.stdout)
		}
		var got []string
		for _, b := range text {
			got = append(got, b)
		}
		slices.Sort(got)
		want := []string{"\nHI\n", "\ntwo:hi\n", " error: remote error busy: try later\n"}
		if !slices.Equal(got, want) {
			t.Errorf("blocks after the IDs: %q, want %q", got, want)
		}
	})

	t.Run("json", func(t *testing.T) {
		res := runCmd(t, bin, nil, "from stdin", "send", "--server", srv.addr, "--channel", "fleet", "--all", "--json")
		gathers++
		checkFailure(t, res, exitPartial, "did not answer")
		replies := jsonReplies(t, res.stdout)
		if len(replies) != 3 {
			t.Fatalf("%d JSON lines, want 3:\n%s", len(replies), res.stdout)
		}
		for _, r := range replies {
			from, _ := r["from"].(string)
			if !members[from] {
				t.Errorf("a reply from %q, not a receiver", from)
			}
			switch r["outcome"] {
			case "completed":
				// The member that answered HI to hi in text answers
				// FROM STDIN here, the other two:from stdin.
				want := map[string]string{"\nHI\n": "FROM STDIN", "\ntwo:hi\n": "two:from stdin"}[text[from]]
				if r["body"] != want || r["error"] != nil || r["body_base64"] != nil {
					t.Errorf("member %s: %v, want body %q (it answered %q in text)", from, r, want, text[from])
				}
			case "remote_error":
				if r["code"] != "busy" || r["error"] != "remote error busy: try later" || r["body"] != nil {
					t.Errorf("the failing member's line %v, want code busy, its message and no body", r)
				}
				if !strings.Contains(text[from], "error:") {
					t.Errorf("member %s failed here but not in text: %q", from, text[from])
				}
			default:
				t.Errorf("reply %v: outcome %q", r, r["outcome"])
			}
		}
	})

	t.Run("binary body and exit 0", func(t *testing.T) {
		startReceiver(t, bin, srv, "--channel", "bin", "--exec", `cat >/dev/null; printf '\377\376'`)
		res := send("", "--channel", "bin", "--all", "--json", "--data", "x")
		gathers++
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
		}
		replies := jsonReplies(t, res.stdout)
		if len(replies) != 1 || replies[0]["body"] != "//4=" || replies[0]["body_base64"] != true || replies[0]["outcome"] != "completed" {
			t.Errorf("replies %v, want one with body //4= and body_base64 true", replies)
		}
	})

	t.Run("include", func(t *testing.T) {
		c := dialTest(t, srv.addr, "with-headers")
		go serveWithHeaders(c)
		res := send("", "--channel", "with-headers", "--all", "--include", "--data", "body")
		gathers++
		want := "== " + c.ID().String() + "\nContent-Type: text/plain\nX-Id: 1\nX-Id: 2\n\nBODY\n"
		if res.code != 0 || res.stdout != want || res.stderr != "" {
			t.Errorf("send --all --include: exit %d, stdout %q, stderr %q; want 0, %q", res.code, res.stdout, res.stderr, want)
		}
		res = send("", "--channel", "with-headers", "--all", "--json", "--data", "body")
		gathers++
		replies := jsonReplies(t, res.stdout)
		if res.code != 0 || len(replies) != 1 || !strings.Contains(res.stdout, `"header":{"Content-Type":["text/plain"],"X-Id":["1","2"]}`) {
			t.Errorf("send --all --json: exit %d, stdout %q; want 0 and the headers", res.code, res.stdout)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		startReceiver(t, bin, srv, "--channel", "slow", "--exec", "cat")
		startReceiver(t, bin, srv, "--channel", "slow", "--exec", "cat >/dev/null; sleep 60")
		res := send("", "--channel", "slow", "--all", "--json", "--timeout", "1s", "--data", "quick")
		gathers++
		checkFailure(t, res, exitPartial, "1 of 2 members did not answer: timeout 1")
		var outcomes []string
		for _, r := range jsonReplies(t, res.stdout) {
			outcomes = append(outcomes, r["outcome"].(string))
		}
		if slices.Sort(outcomes); !slices.Equal(outcomes, []string{"completed", "timeout"}) {
			t.Errorf("outcomes %v, want completed and timeout:\n%s", outcomes, res.stdout)
		}
	})

	t.Run("a member leaves", func(t *testing.T) {
		stays := dialTest(t, srv.addr, "leaving")
		go serveWithHeaders(stays)
		leaves := dialTest(t, srv.addr, "leaving")
		go func() {
			// Take the request, then leave without answering.
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if _, err := leaves.Receive(ctx); err == nil {
				leaves.Close()
			}
		}()
		res := send("", "--channel", "leaving", "--all", "--json", "--data", "bye")
		gathers++
		checkFailure(t, res, exitPartial, "1 of 2 members did not answer: peer_gone 1")
		got := make(map[string]string)
		for _, r := range jsonReplies(t, res.stdout) {
			got[r["from"].(string)] = r["outcome"].(string)
		}
		want := map[string]string{stays.ID().String(): "completed", leaves.ID().String(): "peer_gone"}
		if !maps.Equal(got, want) {
			t.Errorf("outcomes %v, want %v", got, want)
		}
	})

	t.Run("publish", func(t *testing.T) {
		res := send("", "--channel", "fleet", "--publish", "--data", "note")
		publishes++
		checkSuccess(t, res, "3\n")
		res = send("", "--channel", "fleet", "--publish", "--json", "--data", "note")
		publishes++
		checkSuccess(t, res, "{\"took\":3}\n")
	})

	t.Run("refusals", func(t *testing.T) {
		checkFailure(t, send("", "--channel", "nobody", "--all", "--data", "x"), exitNoPeers, "no peers")
		checkFailure(t, send("", "--channel", "nobody", "--publish", "--data", "x"), exitNoPeers, "no peers")
		checkFailure(t, send(strings.Repeat("x", 2000), "--channel", "fleet", "--all"), exitTooLarge, "over the server's limit of 1 KiB")
		// Four members, over --max-gather-members 3.
		for range 4 {
			dialTest(t, srv.addr, "crowd")
		}
		checkFailure(t, send("", "--channel", "crowd", "--all", "--data", "x"), exitLimit, "limit")
		res := send("", "--channel", "fleet", "--publish", "--include", "--data", "x")
		if res.code != exitUsage {
			t.Errorf("--publish --include: exit %d, want %d", res.code, exitUsage)
		}
		res = send("", "--channel", "fleet", "--json", "--data", "x")
		if res.code != exitUsage {
			t.Errorf("--json without --all: exit %d, want %d", res.code, exitUsage)
		}
	})

	t.Run("counted", func(t *testing.T) {
		families := scrape(t, srv.monitor+"/metrics")
		if got := labelledValue(families, "socketbus_gathers_total", "kind", "gather"); got != float64(gathers) {
			t.Errorf(`socketbus_gathers_total{kind="gather"} = %v, want %d`, got, gathers)
		}
		if got := labelledValue(families, "socketbus_gathers_total", "kind", "publish"); got != float64(publishes) {
			t.Errorf(`socketbus_gathers_total{kind="publish"} = %v, want %d`, got, publishes)
		}
		// fleet: 2 answers and 1 failure in each of 2 gathers, 3 takers in
		// each of 2 publishes; bin 1 answer; with-headers 2; slow 1 answer
		// and 1 timeout; leaving 1 answer and 1 gone.
		for outcome, want := range map[string]float64{"completed": 2*2 + 2*3 + 1 + 2 + 1 + 1, "remote_error": 2, "timeout": 1, "peer_gone": 1} {
			if got := labelledValue(families, "socketbus_gather_replies_total", "outcome", outcome); got != want {
				t.Errorf(`socketbus_gather_replies_total{outcome=%q} = %v, want %v`, outcome, got, want)
			}
		}
		res := runCmd(t, bin, nil, "", "status", "--monitor", srv.monitor)
		if want := "gathers: 7, publishes: 2, their members: completed 15, peer_gone 1, remote_error 2, timeout 1"; !strings.Contains(res.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, res.stdout)
		}
	})
}

// blockStart is the "== ID" line that starts a reply's block.
var blockStart = regexp.MustCompile(`(?m)^== ([0-9a-f-]{36})`)

// textBlocks splits send --all's text output into its blocks: each
// member's ID to the rest of its block after the ID.
func textBlocks(t *testing.T, out string) map[string]string {
	t.Helper()
	blocks := make(map[string]string)
	idx := blockStart.FindAllStringSubmatchIndex(out, -1)
	if len(idx) == 0 || idx[0][0] != 0 {
		t.Fatalf("output does not start with a block: %q", out)
	}
	for i, m := range idx {
		end := len(out)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		id := out[m[2]:m[3]]
		if _, dup := blocks[id]; dup {
			t.Errorf("two blocks from %s: %q", id, out)
		}
		blocks[id] = out[m[1]:end]
	}
	return blocks
}

// jsonReplies parses send --all --json's lines.
func jsonReplies(t *testing.T, out string) []map[string]any {
	t.Helper()
	var replies []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		replies = append(replies, r)
	}
	return replies
}

// labelledValue returns the value of the counter name whose label is
// value, or -1 when there is none.
func labelledValue(families map[string]*dto.MetricFamily, name, label, value string) float64 {
	for _, m := range families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestGatherLargeBodyEndToEnd: send --all reads a 4 MiB body from stdin
// whole and every member gets all of it.
func TestGatherLargeBodyEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	for range 2 {
		startReceiver(t, bin, srv, "--channel", "count", "--exec", "wc -c | tr -d ' '")
	}
	body := lowercase(4 << 20)
	res := runCmd(t, bin, nil, body, "send", "--server", srv.addr, "--channel", "count", "--all")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", res.code, res.stderr)
	}
	blocks := textBlocks(t, res.stdout)
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2:\n%s", len(blocks), res.stdout)
	}
	for id, b := range blocks {
		if b != "\n4194304\n" {
			t.Errorf("member %s counted %q, want 4194304", id, b)
		}
	}
}
