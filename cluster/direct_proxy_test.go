package cluster_test

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"
)

// directProxy stands between a dialing node and the node it dials (which
// announces the proxy's address): it forwards each direction of each
// connection, and a test can stop either direction — the proxy then stops
// reading that side, closing nothing, as a peer whose process stopped
// reading does, or a network that went silent.
type directProxy struct {
	t      *testing.T
	ln     net.Listener
	target chan string // given once, when the target node listens
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	// gates[0] holds the dialer → target direction, gates[1] the other.
	gates [2]chan struct{} // nil: open; otherwise closed when reopened
}

const (
	up   = 0 // dialer → target
	down = 1 // target → dialer
)

// newDirectProxy listens on loopback with a small receive buffer (so a
// stopped direction fills the dialer's socket buffers sooner).
func newDirectProxy(t *testing.T) *directProxy {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		_ = rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return err
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &directProxy{t: t, ln: ln, target: make(chan string, 1), done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *directProxy) addr() string { return p.ln.Addr().String() }

// setTarget says where the target node listens.
func (p *directProxy) setTarget(addr string) { p.target <- addr }

// stop stops forwarding in direction dir (up or down), and start resumes it.
func (p *directProxy) stop(dir int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates[dir] == nil {
		p.gates[dir] = make(chan struct{})
	}
}

func (p *directProxy) start(dir int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gates[dir] != nil {
		close(p.gates[dir])
		p.gates[dir] = nil
	}
}

// wait returns once direction dir is open; false once the proxy closes.
func (p *directProxy) wait(dir int) bool {
	for {
		p.mu.Lock()
		g := p.gates[dir]
		p.mu.Unlock()
		if g == nil {
			return true
		}
		select {
		case <-g:
		case <-p.done:
			return false
		}
	}
}

func (p *directProxy) accept() {
	defer p.wg.Done()
	var target string
	select {
	case target = <-p.target:
	case <-p.done:
		return
	}
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(up, c, s)
		go p.pump(down, s, c)
	}
}

// pump forwards src to dst while direction dir is open; an error on
// either side closes both.
func (p *directProxy) pump(dir int, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() { _ = src.Close(); _ = dst.Close() }()
	buf := make([]byte, 4096)
	for p.wait(dir) {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *directProxy) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
