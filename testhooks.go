package socketbus

// testHooks are the points where a test holds or watches one Client. Only
// export_test.go makes them: in production hooksOf is nil, so every site
// costs one nil check and Client carries nothing.
type testHooks struct {
	// takeGate: a push waits for a value on it before a handler may take
	// it. pushed is told the ID of each push queued.
	takeGate chan struct{}
	pushed   chan ID
	// close is called by Close once the pushes are stopped and given
	// back, before it drains the connection.
	close func()
	// endPush is called by endPush once it has emptied the queue of
	// pushed requests no handler took.
	endPush func()
	// install is called by redial once a server has taken the join,
	// before the connection is made current; loss by afterLoss once the
	// lost connection's goroutines have stopped, before it looks at the
	// client's tables.
	install, loss func()
}

// hooksOf returns a Client's test hooks, or nil. It is nil itself in
// production; export_test.go sets it.
var hooksOf func(c *Client) *testHooks

// hooksFor returns c's test hooks, or nil.
func hooksFor(c *Client) *testHooks {
	if hooksOf == nil {
		return nil
	}
	return hooksOf(c)
}
