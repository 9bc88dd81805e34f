package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// childServer is a server running in a child process (scale_child.go).
type childServer struct {
	system string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	addr   string // where clients dial it
}

// startChild starts this program again as system's server and waits until
// it listens.
func startChild(system string) (*childServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	c := &childServer{system: system, cmd: exec.Command(exe, "-serve-child", system)}
	c.cmd.Stderr = os.Stderr
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	c.out = bufio.NewScanner(stdout)
	line, err := c.readLine("addr")
	if err != nil {
		c.Close()
		return nil, err
	}
	c.addr = line
	return c, nil
}

// readLine reads the child's next line, which must start with word, and
// returns the rest of it.
func (c *childServer) readLine(word string) (string, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("child %s: reading %q: %w", c.system, word, err)
	}
	rest, ok := strings.CutPrefix(c.out.Text(), word+" ")
	if !ok {
		return "", fmt.Errorf("child %s: got %q, want %q", c.system, c.out.Text(), word+" ...")
	}
	return rest, nil
}

// ask sends the child command and scans its answer into dst.
func (c *childServer) ask(command string, dst ...any) error {
	if _, err := io.WriteString(c.in, command+"\n"); err != nil {
		return fmt.Errorf("child %s: %s: %w", c.system, command, err)
	}
	line, err := c.readLine(command)
	if err != nil {
		return err
	}
	if _, err := fmt.Sscan(line, dst...); err != nil {
		return fmt.Errorf("child %s: %s answer %q: %w", c.system, command, line, err)
	}
	return nil
}

// CPU returns the child's CPU time so far.
func (c *childServer) CPU() (time.Duration, error) {
	var ns int64
	err := c.ask("cpu", &ns)
	return time.Duration(ns), err
}

// Memory returns the child's memory after two garbage collections.
func (c *childServer) Memory() (memory, error) {
	var m memory
	err := c.ask("mem", &m.heap, &m.stacks, &m.rss, &m.goroutines)
	return m, err
}

// Close ends the child (its stdin ends, it closes its server) and waits
// for it to exit.
func (c *childServer) Close() error {
	cerr := c.in.Close()
	werr := c.cmd.Wait()
	if werr != nil {
		werr = fmt.Errorf("child %s: %w", c.system, werr)
	}
	return errors.Join(cerr, werr)
}
