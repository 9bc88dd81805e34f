package server_test

import "github.com/socketbus/socketbus/internal/testpeer"

// The helpers the server's tests share with the others.
var (
	startServer = testpeer.StartServer
	dial        = testpeer.DialClient
	serveN      = testpeer.ServeN
	upper       = testpeer.Upper
	roundTrip   = testpeer.RoundTrip
	addrDialer  = testpeer.AddrDialer
)
