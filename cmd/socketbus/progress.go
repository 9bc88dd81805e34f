package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressThreshold is the body size past which send shows a progress bar
// on a terminal.
const progressThreshold = 1 << 20

// isTerminal reports whether stream, a standard stream, is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// sendProgress draws send's progress bars on w: "sending" for the request
// body, then "receiving" for the response. A bar appears once more than
// threshold bytes have passed: at the first read when the body's size is
// known to be larger, later for a body of unknown size (-1) or a response,
// whose size is never known, that turns out larger. One bar draws at a
// time: the sending bar until the body has been read to its end, then the
// receiving bar. When the response goes to the same terminal (shared), its
// first byte ends the sending bar instead, so that it starts on a line of
// its own, and there is no receiving bar.
//
// A bar is drawn at 100% only when its bytes are known to be all there: a
// body of known size read to its end, or the response once finish(true)
// says the request succeeded. The end of a body of unknown size proves
// nothing (Ctrl-C ends the command that pipes it in too), so its bar ends
// showing the bytes read. An interrupted or failed send leaves its bars
// where they were.
//
// The body is read on one goroutine and the response written on another;
// mu orders what they do to the bars.
type sendProgress struct {
	w         io.Writer
	threshold int64
	size      int64 // of the request body; -1 if unknown
	shared    bool  // the response goes to the terminal the bars are on

	mu       sync.Mutex
	sent     int64
	received int64
	sendBar  *progressbar.ProgressBar
	recvBar  *progressbar.ProgressBar
	sendDone bool // the sending bar has ended, or never will begin
	ended    bool // finish has run
}

// newBar returns a bar for max bytes (-1: unknown) described as desc.
func (p *sendProgress) newBar(max int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetSpinnerChangeInterval(0), // no goroutine of its own
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
}

// reader returns r counting what is read through it on the sending bar.
// Reads must not be concurrent, which Client.Send guarantees of a body.
func (p *sendProgress) reader(r io.Reader) io.Reader {
	return readerFunc(func(b []byte) (int, error) {
		n, err := r.Read(b)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.sent += int64(n)
		switch {
		case p.ended || p.sendDone:
		case p.sendBar != nil:
			_ = p.sendBar.Add64(int64(n)) // a render error only costs the bar
		case p.sent > p.threshold || p.size > p.threshold:
			p.sendBar = p.newBar(p.size, "sending")
			_ = p.sendBar.Add64(p.sent)
		}
		if err == io.EOF && !p.ended && !p.sendDone {
			p.endSendingLocked(true)
			p.startReceivingLocked()
		}
		return n, err
	})
}

// writer returns w counting what is written through it on the receiving
// bar.
func (p *sendProgress) writer(w io.Writer) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		if !p.ended {
			p.received += int64(len(b))
			if p.shared && !p.sendDone {
				p.endSendingLocked(false)
			}
			if p.recvBar != nil {
				_ = p.recvBar.Add64(int64(len(b)))
			} else {
				p.startReceivingLocked()
			}
		}
		p.mu.Unlock()
		return w.Write(b)
	})
}

// endSendingLocked ends the sending bar, if it is drawing; eof says the
// body was read to its end.
func (p *sendProgress) endSendingLocked(eof bool) {
	p.sendDone = true
	bar := p.sendBar
	if bar == nil || bar.IsFinished() { // a known size read whole is at 100% already
		return
	}
	if eof && p.size < 0 {
		_ = bar.Clear()
		fmt.Fprintf(p.w, "sending %s (the end of the body)", formatBytes(p.sent))
	}
	_ = bar.Exit()
}

// startReceivingLocked starts the receiving bar if it is time to.
func (p *sendProgress) startReceivingLocked() {
	if p.shared || !p.sendDone || p.recvBar != nil || p.received <= max(p.threshold, 0) {
		return
	}
	p.recvBar = p.newBar(-1, "receiving")
	_ = p.recvBar.Add64(p.received)
}

// finish ends the bars: the receiving bar at 100% when ok says the request
// succeeded, every bar where it is otherwise.
func (p *sendProgress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	if !p.sendDone {
		p.endSendingLocked(false)
	}
	switch bar := p.recvBar; {
	case bar == nil:
	case ok && p.received > 0:
		bar.ChangeMax64(p.received)
		_ = bar.Finish()
	default:
		_ = bar.Exit()
	}
}

// readerFunc is an io.Reader made of a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// writerFunc is an io.Writer made of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
