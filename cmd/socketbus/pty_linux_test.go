//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal and returns its controlling side and
// the terminal side a process is given, both closed when the test ends.
func openPTY(t *testing.T) (control, tty *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { control.Close() })
	unlock := int32(0)
	if err := ioctl(control, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	var n uint32
	if err := ioctl(control, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatalf("naming the pseudo-terminal: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return control, tty
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// readTerminal collects what is written to a pseudo-terminal until every
// process holding its terminal side has closed it.
func readTerminal(control *os.File) <-chan string {
	out := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := control.Read(buf)
			b.Write(buf[:n])
			if err != nil { // EIO once the terminal side is closed everywhere
				if !errors.Is(err, syscall.EIO) {
					b.WriteString("\n[read error: " + err.Error() + "]")
				}
				out <- b.String()
				return
			}
		}
	}()
	return out
}

// TestSendOnATerminal runs send with a terminal for stdin, and then for
// stderr: typing a body, send says it reads stdin until Ctrl-D; with
// stderr on a terminal and large bodies both ways, it draws a sending bar
// and a receiving bar without being asked.
func TestSendOnATerminal(t *testing.T) {
	bin := buildBinary(t)
	srv := startServer(t, bin, nil)
	startReceiver(t, bin, srv, "--channel", "upper", "--exec", "tr a-z A-Z")

	t.Run("stdin", func(t *testing.T) {
		control, tty := openPTY(t)
		sender := startProcIn(t, bin, nil, tty, "send", "--server", srv.addr, "--channel", "upper")
		tty.Close()
		sender.waitLine(sender.stderr, "reading the request body from stdin")
		// A line, then Ctrl-D at the start of the next: the end of input.
		if _, err := control.WriteString("typed in\n\x04"); err != nil {
			t.Fatal(err)
		}
		if code := sender.wait(); code != 0 || sender.stdout.String() != "TYPED IN\n" {
			t.Errorf("send: exit %d, stdout %q, stderr %q; want 0 and %q", code, sender.stdout, sender.stderr, "TYPED IN\n")
		}
		if l := sender.stderr.line("reading the request body"); !strings.Contains(l, "Ctrl-D") {
			t.Errorf("stderr line %q does not say how to end the body", l)
		}
	})
	t.Run("stdin not a terminal", func(t *testing.T) {
		res := runCmd(t, bin, nil, "piped\n", "send", "--server", srv.addr, "--channel", "upper")
		checkSuccess(t, res, "PIPED\n")
	})
	t.Run("stderr", func(t *testing.T) {
		control, tty := openPTY(t)
		body, err := os.CreateTemp(t.TempDir(), "body")
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		if _, err := body.WriteString(lowercase(3 << 20)); err != nil {
			t.Fatal(err)
		}
		if _, err := body.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		terminal := readTerminal(control)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "send", "--server", srv.addr, "--channel", "upper")
		cmd.Env = testEnv()
		var stdout bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = body, &stdout, tty
		err = cmd.Run()
		tty.Close()
		drawn := <-terminal
		if err != nil || stdout.Len() != 3<<20 {
			t.Errorf("send: %v, %d bytes out; want success and %d bytes; terminal %q", err, stdout.Len(), 3<<20, abbreviate(drawn))
		}
		for _, want := range []string{"sending 100%", "receiving 100%", "(3.0/3.0 MiB"} {
			if !strings.Contains(drawn, want) {
				t.Errorf("terminal %q does not show %q", drawn, want)
			}
		}
	})
}
