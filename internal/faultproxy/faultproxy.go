// Package faultproxy is a TCP proxy on 127.0.0.1 that sits between a client
// (an SDK) and a server (MinIO, Azurite, fake-gcs-server) and injects network
// faults on demand: delay, blackhole, reset, a cut after a number of bytes,
// and a slow drip. Tests and the torture suite switch faults with Set while
// connections are open; Set(Fault{}) heals.
//
// Faults act on the bytes the proxy reads after Set returns, on connections
// already open and on new ones alike:
//
//   - Delay holds each chunk read for that long before forwarding it.
//   - Blackhole accepts connections and holds every chunk (nothing is
//     forwarded or answered) until the blackhole is lifted; then the held
//     bytes flow on intact, as after a healed partition.
//   - Reset resets (TCP RST) every open connection and each new one as soon
//     as it is accepted.
//   - CutUp and CutDown forward that many bytes of a connection towards the
//     server (up) or the client (down) and then cut the connection: the
//     side that received the bytes sees them end early, the other a reset;
//     a cut in the middle of an upload or a download.
//   - DripBytes and DripEvery forward at most DripBytes bytes per DripEvery.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Fault is the set of faults in force; the zero Fault forwards everything
// unchanged.
type Fault struct {
	// Delay is how long each chunk read is held before it is forwarded.
	Delay time.Duration
	// Blackhole holds every byte in both directions until it is lifted.
	Blackhole bool
	// Reset resets open connections and every new one.
	Reset bool
	// CutUp, when positive, cuts a connection after it has forwarded that
	// many bytes towards the server.
	CutUp int64
	// CutDown, when positive, cuts a connection after it has forwarded
	// that many bytes towards the client.
	CutDown int64
	// DripBytes, when positive, is how many bytes are forwarded at a time,
	// with a pause of DripEvery before each piece.
	DripBytes int
	// DripEvery is the pause before each piece of a drip.
	DripEvery time.Duration
}

// Proxy forwards the connections it accepts on 127.0.0.1 to an upstream
// address. It is safe for concurrent use.
type Proxy struct {
	ln       net.Listener
	upstream string
	done     chan struct{}
	wg       sync.WaitGroup

	mu       sync.Mutex
	fault    Fault
	changed  chan struct{} // closed and replaced by each Set
	links    map[*link]struct{}
	accepted int
	closed   bool
}

// Start listens on a free port of 127.0.0.1 and forwards what it accepts to
// upstream ("127.0.0.1:9000").
func Start(upstream string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("faultproxy: upstream %q is not host:port: %w", upstream, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, upstream: upstream, done: make(chan struct{}), changed: make(chan struct{}), links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address clients connect to ("127.0.0.1:PORT").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set puts f in force (replacing the faults before it); Set(Fault{}) heals.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	p.fault = f
	close(p.changed)
	p.changed = make(chan struct{})
	var reset []*link
	if f.Reset {
		for l := range p.links {
			reset = append(reset, l)
		}
	}
	p.mu.Unlock()
	for _, l := range reset {
		l.reset()
	}
}

// Accepted returns how many connections the proxy has accepted.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops accepting, closes every connection and waits for the proxy's
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) state() (Fault, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fault, p.changed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	p.accepted++
	f := p.fault
	p.mu.Unlock()
	if f.Reset {
		resetConn(client)
		return
	}
	var d net.Dialer
	server, err := d.Dial("tcp", p.upstream)
	if err != nil {
		resetConn(client)
		return
	}
	l := &link{client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, server, client, true) }()
	go func() { defer wg.Done(); p.pipe(l, client, server, false) }()
	wg.Wait()
	l.close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pipe forwards src to dst, applying the faults in force to each chunk.
func (p *Proxy) pipe(l *link, dst, src net.Conn, up bool) {
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			for len(chunk) > 0 {
				f, changed := p.state()
				switch {
				case f.Reset:
					l.reset()
					return
				case f.Blackhole:
					if !l.wait(changed) {
						return
					}
					continue
				}
				if f.Delay > 0 && !l.sleep(f.Delay) {
					return
				}
				piece := chunk
				if f.DripBytes > 0 {
					if !l.sleep(f.DripEvery) {
						return
					}
					piece = piece[:min(len(piece), f.DripBytes)]
				}
				limit := f.CutDown
				if up {
					limit = f.CutUp
				}
				cut := false
				if limit > 0 && sent+int64(len(piece)) >= limit {
					piece = piece[:max(0, limit-sent)]
					cut = true
				}
				if _, err := dst.Write(piece); err != nil {
					l.close()
					return
				}
				sent += int64(len(piece))
				if cut {
					l.cut(dst)
					return
				}
				chunk = chunk[len(piece):]
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Pass the half-close on; the other direction goes on.
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			l.close()
			return
		}
	}
}

// link is one proxied connection: the client's side and the server's.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

// wait blocks until changed is closed (true) or the link is (false).
func (l *link) wait(changed <-chan struct{}) bool {
	select {
	case <-changed:
		return true
	case <-l.done:
		return false
	}
}

// sleep waits for d unless the link closes first (false).
func (l *link) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}

func (l *link) reset() {
	l.once.Do(func() {
		close(l.done)
		resetConn(l.client)
		resetConn(l.server)
	})
}

// cut ends the link after a cut: the side that received the forwarded
// bytes gets them all and then an end of stream (a reset could discard
// bytes still in its receive buffer); the other side is reset.
func (l *link) cut(receiver net.Conn) {
	l.once.Do(func() {
		close(l.done)
		for _, c := range []net.Conn{l.client, l.server} {
			if c == receiver {
				c.Close()
			} else {
				resetConn(c)
			}
		}
	})
}

// resetConn closes c with an RST rather than a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
