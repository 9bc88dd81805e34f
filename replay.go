package socketbus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// replay remembers how to send a request body again from its start, for a
// request re-sent after a lost connection: by seeking back, when the body
// is an io.Seeker, or from a copy of its first and only piece.
type replay struct {
	seeker io.Seeker
	offset int64
	keep   bool   // copy the first piece if it is the whole body
	kept   []byte // that copy
	whole  bool   // kept holds the whole body
}

func newReplay(body io.Reader, reconnects bool) replay {
	if !reconnects {
		return replay{}
	}
	if s, ok := body.(io.Seeker); ok {
		if off, err := s.Seek(0, io.SeekCurrent); err == nil {
			return replay{seeker: s, offset: off}
		}
	}
	return replay{keep: true}
}

func (rp *replay) seekable() bool { return rp.seeker != nil }

// replayable says the body can be sent again from its start.
func (rp *replay) replayable() bool { return rp.seeker != nil || rp.whole }

// keepPiece is told each piece read into the first frame and whether it
// ended the body.
func (rp *replay) keepPiece(p []byte, ended bool) {
	if rp.keep && ended {
		rp.kept, rp.whole = append(rp.kept[:0], p...), true
	}
	rp.keep = false // only the first piece
}

var errNotReplayable = errors.New("its body cannot be read again")

// rewind returns the body to send again, from its start.
func (rp *replay) rewind(body io.Reader) (io.Reader, error) {
	switch {
	case rp.seeker != nil:
		if _, err := rp.seeker.Seek(rp.offset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("seeking the body back: %w", err)
		}
		return body, nil
	case rp.whole:
		return bytes.NewReader(rp.kept), nil
	}
	return nil, errNotReplayable
}
