package router

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestRequestStatesMatchProtocol: docs/PROTOCOL.md section 15.1 names the
// states of reqState, in its order, as the rows of its table of frames,
// and its table of moves is reqMoves; every state a cell moves a request
// to is one its row's state can reach by reqMoves.
func TestRequestStatesMatchProtocol(t *testing.T) {
	st := ReadStateTables(t)
	if want := reqStateNames[:]; !slices.Equal(st.States, want) {
		t.Errorf("section 15.1's rows are %q, want reqState's %q", st.States, want)
	}
	var want [][3]string
	for _, mv := range reqMoves {
		want = append(want, [3]string{mv.from.String(), mv.to.String(), mv.when})
	}
	if !slices.Equal(st.Moves, want) {
		var b strings.Builder
		b.WriteString("| from | to | when |\n|---|---|---|\n")
		for _, mv := range want {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mv[0], mv[1], mv[2])
		}
		t.Errorf("section 15.1's table of moves is not reqMoves; from reqMoves it reads:\n%s", b.String())
	}
	names := make(map[string]reqState)
	for s, name := range reqStateNames {
		names[name] = reqState(s)
	}
	for _, state := range st.States {
		for _, frame := range st.Frames {
			c := st.Cells[state][frame]
			if c.To == "" {
				continue
			}
			from, ok1 := names[state]
			to, ok2 := names[c.To]
			if !ok1 || !ok2 || !reachable(from, to) {
				t.Errorf("section 15.1, %s × %s: moves the request to %q, which reqMoves does not reach from %q", state, frame, c.To, state)
			}
		}
	}
}

// reachable reports whether a request in state from can get to state to
// by one or more of reqMoves.
func reachable(from, to reqState) bool {
	seen := map[reqState]bool{from: true}
	next := []reqState{from}
	for len(next) > 0 {
		s := next[0]
		next = next[1:]
		for _, mv := range reqMoves {
			if mv.from == s && !seen[mv.to] {
				if mv.to == to {
					return true
				}
				seen[mv.to] = true
				next = append(next, mv.to)
			}
		}
	}
	return false
}

// TestRequestMoves: request.to makes exactly the moves of reqMoves, and
// panics at any other, ended requests included.
func TestRequestMoves(t *testing.T) {
	for from := range numReqStates {
		for to := range numReqStates + 1 {
			legal := to < numReqStates && reqCanMove[from][to]
			req := &request{state: from}
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				req.to(to)
				return false
			}()
			switch {
			case legal && panicked:
				t.Errorf("%s → %s: panicked, want the move (reqMoves has it)", from, to)
			case legal && req.state != to:
				t.Errorf("%s → %s: the request is %s, want %s", from, to, req.state, to)
			case !legal && !panicked:
				t.Errorf("%s → %s: moved, want a panic (reqMoves has no such move)", from, to)
			}
		}
	}
	if got := reqState(numReqStates).String(); got != "reqState(6)" {
		t.Errorf("String of an undefined state = %q, want %q", got, "reqState(6)")
	}
}
