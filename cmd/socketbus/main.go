// Command socketbus runs a socketbus server.
//
//	socketbus serve [-addr 127.0.0.1:7411]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/socketbus/socketbus"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: socketbus serve [-addr host:port]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:7411", "address to listen on")
	fs.Parse(os.Args[2:])

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "socketbus:", err)
		os.Exit(1)
	}
	srv := socketbus.NewServer(socketbus.ServerConfig{})
	fmt.Printf("socketbus listening on %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, socketbus.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "socketbus:", err)
		os.Exit(1)
	}
}
