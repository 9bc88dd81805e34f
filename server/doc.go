// Package server is the socketbus server: it routes request/response
// streams between the clients joined to each channel (package socketbus,
// the module's root, is the client). Create one with New, then call Serve
// or ListenAndServe; Shutdown drains it, Close stops it.
//
//	srv := server.New(server.Config{MaxMemory: 256 << 20})
//	go srv.ListenAndServe("127.0.0.1:7411")
//	...
//	srv.Shutdown(ctx)
//
// Config's zero value is a working configuration: every zero field takes
// the default its comment gives. Config.Cluster makes the server a node
// of a bus of several (package github.com/socketbus/socketbus/cluster, over
// NATS, which this package does not import), through the Cluster
// interface: New attaches it, and a Cluster serves one Server.
//
// # Where things live
//
// server.go has the Server's life (New, Serve, Shutdown, Close); conn.go a
// client connection (its join, its frames handed to the router); sniff.go
// the answers to clients that speak another protocol; memory.go the memory
// reaper; cluster.go the Cluster interface and how the server attaches
// its bus (what the Cluster reaches behind Attachment and Join goes
// through internal/busapi); log.go what the server logs and the counters
// behind Stats; stats.go and connz.go the Stats and Conns snapshots;
// config.go the Config and its defaults. The routing state is
// internal/router, the framed connection internal/frameconn, the codec
// internal/wire, the memory accounts internal/budget, and the hooks only
// tests set internal/testhook.
package server
