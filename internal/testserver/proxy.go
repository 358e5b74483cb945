package testserver

import (
	"bytes"
	"net"
	"sync"

	"passerelle.dev/passerelle/internal/tb"
)

// Proxy forwards TCP connections on loopback to a target, and can cut them
// all at once to simulate a network failure between two real parties.
type Proxy struct {
	// Addr is the proxy's listening address.
	Addr   string
	target string
	ln     net.Listener

	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	stalled  bool
	resume   *sync.Cond
	marker   []byte // see CutOn
	cutOns   int
}

// NewProxy starts a proxy to target; it stops when the test ends.
func NewProxy(t tb.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	p.resume = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Resume()
		p.Cut()
	})
	return p
}

func (p *Proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.accepted++
		p.mu.Unlock()
		var wg sync.WaitGroup
		wg.Add(2)
		go p.pipe(in, out, &wg)
		go p.pipe(out, in, &wg, in)
		go func() {
			wg.Wait()
			in.Close()
			out.Close()
		}()
	}
}

// pipe copies src to dst, holding bytes back while the proxy is stalled,
// until src ends, and passes the end on; the pair is closed once both
// directions are done. (Closing both at the first end, as it once did,
// dropped the last stanzas a closing gateway wrote whenever the server
// wrote to it at the same moment.)
//
// On the way to the target (watch is the client's side), a connection that
// carries the CutOn marker is closed instead.
func (p *Proxy) pipe(dst, src net.Conn, wg *sync.WaitGroup, watch ...net.Conn) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read, for a marker across two
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.stalled {
			p.resume.Wait()
		}
		marker := p.marker
		if len(watch) > 0 && len(marker) > 0 && n > 0 {
			seen := append(tail, buf[:n]...)
			if bytes.Contains(seen, marker) {
				p.cutOns++
				p.mu.Unlock()
				dst.Close()
				src.Close()
				return
			}
			tail = append(tail[:0], seen[max(0, len(seen)-len(marker)+1):]...)
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// Pass the end on, as a half-close: what the other side still
			// sends keeps flowing, and nothing already read is lost.
			if tcp, ok := dst.(*net.TCPConn); ok {
				_ = tcp.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
	}
}

// Stall stops forwarding bytes without closing anything, like a network
// that silently drops packets.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// Resume forwards bytes again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = false
	p.resume.Broadcast()
}

// Cut closes every connection through the proxy; new ones are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// CutOn makes the proxy close, instead of forwarding, any connection on
// which the client sends marker, as a server that ends the stream on one
// stanza; nil stops it.
func (p *Proxy) CutOn(marker []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.marker = marker
}

// CutOns counts the connections closed because they carried the CutOn
// marker.
func (p *Proxy) CutOns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutOns
}

// Accepted returns how many connections the proxy has forwarded so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
