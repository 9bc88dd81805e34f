package socketbus_test

import (
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// The helpers most tests share (internal/testpeer has them for every
// package's tests).
var (
	startServer = testpeer.StartServer
	dial        = testpeer.DialClient
	noReconnect = testpeer.NoReconnect
	serveN      = testpeer.ServeN
	upper       = testpeer.Upper
	roundTrip   = testpeer.RoundTrip
	addrDialer  = testpeer.AddrDialer
)

// twoClients starts a server with the default configuration and joins two
// clients to the channel named name.
func twoClients(t testing.TB, name string) (a, b *socketbus.Client) {
	t.Helper()
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(name)
	return dial(t, addr, ch), dial(t, addr, ch)
}
