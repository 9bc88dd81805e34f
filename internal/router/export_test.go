package router

// What the tests of package router_test may see of the router's insides:
// a request's state, and docs/PROTOCOL.md section 15.1's tables, which
// state_internal_test.go checks against reqState and reqMoves.

import (
	"os"
	"strings"
	"testing"

	"github.com/socketbus/socketbus/internal/wire"
)

// TrackedRequest follows one request of a member's channel, past its end.
type TrackedRequest struct {
	m   *Member
	id  wire.ID
	req *request // once the request has started
}

// Track follows request id on m's channel, whether or not it has started.
func (m *Member) Track(id wire.ID) *TrackedRequest { return &TrackedRequest{m: m, id: id} }

// State names the request's state as section 15.1 names it: its
// reqState once it has started (ended included), ended for one m keeps a
// tombstone of that the test did not see start, and unknown otherwise.
func (tr *TrackedRequest) State() string {
	ch := tr.m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	switch {
	case tr.requestLocked() != nil:
		return tr.req.state.String()
	case tr.m.ended.has(tr.id):
		return reqEnded.String()
	}
	return reqUnknown.String()
}

// StateCell is a cell of section 15.1's first table: H, D or P, and for
// some H cells the state the frame moves the request to.
type StateCell struct {
	Outcome string // "H", "D" or "P"
	To      string // the state after the frame; "" when it stays
}

// StateTables are section 15.1's two tables.
type StateTables struct {
	Frames []string                        // the first table's columns, the frames
	States []string                        // its rows, the states
	Cells  map[string]map[string]StateCell // [state][frame]
	Moves  [][3]string                     // the second table: from, to, when
}

// protocolPath is docs/PROTOCOL.md, from this package's directory.
const protocolPath = "../../docs/PROTOCOL.md"

// ReadStateTables reads section 15.1's tables from docs/PROTOCOL.md.
func ReadStateTables(t testing.TB) StateTables {
	t.Helper()
	doc, err := os.ReadFile(protocolPath)
	if err != nil {
		t.Fatal(err)
	}
	var tables [][][]string // tables, rows, cells; the separator rows skipped
	in, inTable := false, false
	for _, line := range strings.Split(string(doc), "\n") {
		switch {
		case strings.HasPrefix(line, "### 15.1 "):
			in = true
			continue
		case in && strings.HasPrefix(line, "#"):
			in = false
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if !inTable {
			tables = append(tables, nil)
			inTable = true
		}
		cells := splitRow(line)
		if len(cells) > 0 && strings.Trim(cells[0], "-") == "" {
			continue // the separator
		}
		tables[len(tables)-1] = append(tables[len(tables)-1], cells)
	}
	if len(tables) != 2 {
		t.Fatalf("%s section 15.1: found %d tables, want 2 (frames by state, and moves)", protocolPath, len(tables))
	}
	var st StateTables
	frames := tables[0][0]
	for _, f := range frames[1:] {
		f = strings.ReplaceAll(f, "`", "")
		f = strings.TrimSuffix(f, " (v2, v3)")
		st.Frames = append(st.Frames, f)
	}
	st.Cells = make(map[string]map[string]StateCell)
	for _, row := range tables[0][1:] {
		if len(row) != len(frames) {
			t.Fatalf("section 15.1, row %q: %d cells, want %d", row[0], len(row), len(frames))
		}
		state := row[0]
		st.States = append(st.States, state)
		st.Cells[state] = make(map[string]StateCell)
		for i, cell := range row[1:] {
			c, ok := parseCell(cell)
			if !ok {
				t.Fatalf("section 15.1, %s × %s: cannot read %q (want H, D or P, an optional → state and an optional note in parentheses)", state, st.Frames[i], cell)
			}
			st.Cells[state][st.Frames[i]] = c
		}
	}
	if h := tables[1][0]; len(h) != 3 || h[0] != "from" || h[1] != "to" || h[2] != "when" {
		t.Fatalf("section 15.1's second table has columns %q, want from, to, when", h)
	}
	for _, row := range tables[1][1:] {
		if len(row) != 3 {
			t.Fatalf("section 15.1, moves: row %q has %d cells, want 3", row, len(row))
		}
		st.Moves = append(st.Moves, [3]string{row[0], row[1], row[2]})
	}
	return st
}

// splitRow splits a markdown table row into its trimmed cells; \| is a
// bar inside a cell.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cell.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

// parseCell reads "H", "H → state", "H → state (note)" or "P (note)".
func parseCell(s string) (StateCell, bool) {
	if i := strings.Index(s, " ("); i >= 0 && strings.HasSuffix(s, ")") {
		s = s[:i]
	}
	outcome, to, moves := strings.Cut(s, " → ")
	switch outcome {
	case "H":
	case "D", "P":
		if moves {
			return StateCell{}, false // only a handled frame moves a request
		}
	default:
		return StateCell{}, false
	}
	return StateCell{Outcome: outcome, To: to}, true
}

// GatherCreditAhead returns by how many bytes the outstanding credit of
// the tracked gather's sender exceeds that of its slowest part still
// reading the body: above zero, a part can be fed more than it granted.
// It is 0 for a request that is not a gather, or whose body has ended.
func (tr *TrackedRequest) GatherCreditAhead() int {
	ch := tr.m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	req := tr.requestLocked()
	if req == nil || req.fan == nil || req.body.ended {
		return 0
	}
	ahead := 0
	for _, c := range req.fan.children {
		if c.state != reqEnded && !c.body.ended {
			ahead = max(ahead, req.body.upOutstanding-c.body.upOutstanding)
		}
	}
	return ahead
}

// requestLocked returns the tracked request once it has started, nil
// before.
func (tr *TrackedRequest) requestLocked() *request {
	if tr.req == nil {
		tr.req = tr.m.ch.requests[tr.id]
	}
	return tr.req
}

// WaitingEntries returns how many entries the channel's FIFO of waiting
// receivers holds: one per Receive poll, one per run of push credit.
func (r *Router) WaitingEntries(channel wire.ID) int {
	r.mu.Lock()
	ch := r.channels[channel]
	r.mu.Unlock()
	if ch == nil {
		return 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.polls.n
}

// TombstoneCost is what each ended request ID a member remembers costs
// its account.
const TombstoneCost = tombstoneCost

// GraceTTL is how long an ID a member's pong cleared is still in use.
const GraceTTL = graceTTL
