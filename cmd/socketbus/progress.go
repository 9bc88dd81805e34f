package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressThreshold is the body size past which send shows a progress bar
// on a terminal.
const progressThreshold = 1 << 20

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressReader counts the bytes read through it on a progress bar
// written to w. The bar appears once more than threshold bytes have been
// read: at the first read when the size is known to be larger, later for a
// body of unknown size (-1) that turns out larger. Reads must not be
// concurrent, which Client.Send guarantees of a body.
type progressReader struct {
	r         io.Reader
	w         io.Writer
	size      int64
	threshold int64
	read      int64
	bar       *progressbar.ProgressBar
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	switch {
	case p.bar != nil:
		_ = p.bar.Add64(int64(n)) // a render error only costs the bar
	case p.read > p.threshold || p.size > p.threshold:
		p.bar = progressbar.NewOptions64(p.size,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("sending"),
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
		_ = p.bar.Add64(p.read)
	}
	if err == io.EOF && p.bar != nil {
		// The body is read whole: show its size, and end the line before
		// the response, which may go to the same terminal, begins.
		if p.size < 0 && p.read > 0 {
			p.bar.ChangeMax64(p.read)
			_ = p.bar.Finish()
		}
		p.finish()
	}
	return n, err
}

// finish ends the bar, if there is one, leaving its last state on screen.
func (p *progressReader) finish() {
	if p.bar != nil && !p.bar.IsFinished() {
		_ = p.bar.Exit()
	}
}
