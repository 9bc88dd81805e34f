// Package busapi is the plumbing between a Server (package server) and the
// bus it is a node of (package cluster). Their documented interface is
// server.Cluster, whose parameters server.Attachment and server.Join are
// opaque: what they hold, the Server's router and a joining connection's
// member of it, is reached through the two functions here, which only
// socketbus's own packages can import. So no internal type shows in the
// API of either package, and a program cannot reach the router through
// them.
package busapi

import "github.com/socketbus/socketbus/internal/router"

// Router returns the router a *server.Attachment holds, and Member the
// member a *server.Join holds; each returns nil for anything else (a nil
// pointer, a zero value, another type). Package server sets both when it
// is initialised: their parameters cannot have those types here, since
// package server imports this package.
var (
	Router func(attachment any) *router.Router
	Member func(join any) *router.Member
)
