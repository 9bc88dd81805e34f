package frameconn

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader hands out its data in reads of the sizes given, then EOF.
type chunkReader struct {
	data  []byte
	sizes []int
	reads int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if r.reads < len(r.sizes) {
		n = min(n, r.sizes[r.reads])
	}
	r.reads++
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// TestReadBufferGrowsWithBursts: reads that fill the buffer double it on
// the next fill, up to maxReadBuffer, and every byte comes out in order.
func TestReadBufferGrowsWithBursts(t *testing.T) {
	data := pattern(256 << 10)
	b := newReadBuffer(&chunkReader{data: data})
	if len(b.buf) != minReadBuffer {
		t.Fatalf("a new buffer has %d bytes, want %d", len(b.buf), minReadBuffer)
	}
	var out bytes.Buffer
	hdr := make([]byte, 68)
	for {
		n, err := io.ReadFull(b, hdr) // small reads: through the buffer
		out.Write(hdr[:n])
		if err != nil {
			break
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read %d bytes, not the %d written in order", out.Len(), len(data))
	}
	if len(b.buf) != maxReadBuffer {
		t.Fatalf("after a long burst the buffer has %d bytes, want %d", len(b.buf), maxReadBuffer)
	}
}

// TestReadBufferShrinksWhenIdle: after a burst, reads that use under a
// quarter of the buffer halve it, down to minReadBuffer.
func TestReadBufferShrinksWhenIdle(t *testing.T) {
	burst := pattern(64 << 10)
	trickle := pattern(200 * 68)
	// As much as asked while the burst lasts, then one small frame per
	// read.
	r := &phasedReader{data: append(append([]byte{}, burst...), trickle...), burst: len(burst), after: 68}
	b := newReadBuffer(r)
	hdr := make([]byte, 68)
	var out bytes.Buffer
	peak := 0
	for {
		n, err := io.ReadFull(b, hdr)
		out.Write(hdr[:n])
		peak = max(peak, len(b.buf))
		if err != nil {
			break
		}
	}
	if out.Len() != len(burst)+len(trickle) {
		t.Fatalf("read %d bytes, want %d", out.Len(), len(burst)+len(trickle))
	}
	if peak != maxReadBuffer || len(b.buf) != minReadBuffer {
		t.Fatalf("buffer peaked at %d and ended at %d bytes, want %d then %d", peak, len(b.buf), maxReadBuffer, minReadBuffer)
	}
}

// TestReadBufferLargeReadsBypass: a read at least as large as the buffer
// goes straight to the socket, and Peek reads until it has its bytes.
func TestReadBufferLargeReadsBypass(t *testing.T) {
	data := pattern(100 << 10)
	r := &chunkReader{data: data, sizes: []int{10, 10, 10}}
	b := newReadBuffer(r)
	p, err := b.Peek(68) // arrives 10 bytes at a time
	if err != nil || !bytes.Equal(p, data[:68]) {
		t.Fatalf("Peek(68) = %d bytes, %v", len(p), err)
	}
	head := make([]byte, 68)
	if _, err := io.ReadFull(b, head); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, len(data)-68)
	if _, err := io.ReadFull(b, rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest...), data) {
		t.Fatal("the bytes came out of order")
	}
	if len(b.buf) > 4<<10 {
		t.Fatalf("a 100 KiB payload grew the buffer to %d bytes: large reads should bypass it", len(b.buf))
	}
}

// TestReadBufferErrorAfterData: the bytes read with an error come out
// first, then the error, once.
func TestReadBufferErrorAfterData(t *testing.T) {
	boom := errors.New("boom")
	b := newReadBuffer(io.MultiReader(bytes.NewReader([]byte("abc")), &failing{boom}))
	got, err := io.ReadAll(b)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("ReadAll = %q, %v; want abc, boom", got, err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// phasedReader hands out its first burst bytes as fast as asked, then the
// rest after bytes at a time.
type phasedReader struct {
	data       []byte
	off, burst int
	after      int
}

func (r *phasedReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := len(p)
	if r.off >= r.burst {
		n = min(n, r.after)
	} else {
		n = min(n, r.burst-r.off)
	}
	n = copy(p, r.data[r.off:r.off+min(n, len(r.data)-r.off)])
	r.off += n
	return n, nil
}
