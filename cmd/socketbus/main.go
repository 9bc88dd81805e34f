// Command socketbus runs a socketbus server and talks to one from the
// shell.
//
//	socketbus serve                                   # run a server on 127.0.0.1:7411
//	socketbus receive --channel upper --exec 'tr a-z A-Z'  # answer requests with a command
//	echo hello | socketbus send --channel upper        # send one request, print the response
//	socketbus status                                  # what a server is doing
//	socketbus bench                                   # measure a server
//
// Run "socketbus help" for the flags, and the exit statuses that tell one
// failure from another.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// streams are the standard streams a command uses: the process's in main,
// buffers in tests.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

func main() {
	os.Exit(run(os.Args[1:], &streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}

// run runs the command line args and returns the exit status.
func run(args []string, s *streams) int {
	root := newRootCommand(s)
	root.SetArgs(args)
	// Client commands stop what they do on SIGINT or SIGTERM; serve
	// handles its signals itself. After the first signal the default
	// action is back, so a second one ends the process at once.
	ctx, stop := interruptContext()
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if cmd == nil {
		cmd = root
	}
	// A command the signal cut short exits as the shell expects of one
	// the signal killed: 128 + its number, 130 for SIGINT (Ctrl-C).
	var sig *interrupted
	if errors.As(context.Cause(ctx), &sig) {
		fmt.Fprintf(s.err, "%s: interrupted by %s\n", cmd.CommandPath(), signalName(sig.sig))
		return sig.exitCode()
	}
	code := exitCode(err)
	line := fmt.Sprintf("%s: %s", cmd.CommandPath(), reasonLine(err))
	if code == exitUsage {
		line += fmt.Sprintf(" (see %s --help)", cmd.CommandPath())
	}
	fmt.Fprintln(s.err, line)
	return code
}

// newRootCommand returns the socketbus command with its subcommands.
func newRootCommand(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "socketbus",
		Short: "A request/response message bus over TCP",
		Long: `socketbus runs a message bus server and talks to one from the shell.

A client joins a channel; a request sent on a channel goes to one other
client on it, whose response streams back (send --all: to every other
client, each reply coming back). Channels are UUIDs; --channel NAME maps a
name to one, the same in every process.

` + exitHelp,
		Example: `  # Terminal 1: a server on 127.0.0.1:7411.
  socketbus serve

  # Terminal 2: answer requests on channel "upper" by running a command.
  socketbus receive --channel upper --exec 'tr a-z A-Z'

  # Terminal 3: send a request and print the response.
  echo 'hello, bus' | socketbus send --channel upper`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags(), os.LookupEnv)
		},
	}
	// Completion scripts stay available without crowding the help.
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.Version = readBuildInfo().String()
	root.SetVersionTemplate("{{.Version}}")
	root.SetHelpCommand(newHelpCommand(root))
	root.AddCommand(
		newServeCommand(s),
		newSendCommand(s),
		newReceiveCommand(s),
		newStatusCommand(s),
		newBenchCommand(s),
		newVersionCommand(s),
	)
	return root
}

// runE wraps a command's Run function, marking its errors as its own:
// whatever else cobra returns is about the command line, exit status 2.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &runError{err}
		}
		return nil
	}
}
