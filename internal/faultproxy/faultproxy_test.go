package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// upstream is a real TCP server on 127.0.0.1: it echoes what it reads when
// echo is set, and reports how many bytes each connection delivered before
// it ended.
type upstream struct {
	ln       net.Listener
	received chan int64
}

func startUpstream(t *testing.T, echo bool) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, received: make(chan int64, 16)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var n int64
				if echo {
					n, _ = io.Copy(c, c)
				} else {
					n, _ = io.Copy(io.Discard, c)
				}
				u.received <- n
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return u
}

// setup starts an upstream server and a proxy in front of it.
func setup(t *testing.T, echo bool) (*upstream, *Proxy) {
	t.Helper()
	u := startUpstream(t, echo)
	return u, startProxy(t, u.ln.Addr().String())
}

func startProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, p *Proxy) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}

// roundTrip writes data, half-closes and reads the echo to the end.
func roundTrip(t *testing.T, c *net.TCPConn, data []byte) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	return got
}

func TestPassThrough(t *testing.T) {
	_, p := setup(t, true)
	data := payload(1 << 20)
	if got := roundTrip(t, dial(t, p), data); !bytes.Equal(got, data) {
		t.Fatalf("echo through the proxy: got %d bytes, want the %d sent", len(got), len(data))
	}
	if n := p.Accepted(); n != 1 {
		t.Fatalf("Accepted() = %d, want 1", n)
	}
}

// isTimeout reports whether err is a deadline passing (the peer never
// answered).
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

func TestDelay(t *testing.T) {
	_, p := setup(t, true)
	p.Set(Fault{Delay: time.Hour})
	c := dial(t, p)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 4)); !isTimeout(err) {
		t.Fatalf("read through an hour's delay: err = %v, want a deadline exceeded", err)
	}
	// A short delay still delivers everything intact.
	p.Set(Fault{Delay: time.Millisecond})
	data := payload(100 << 10)
	if got := roundTrip(t, dial(t, p), data); !bytes.Equal(got, data) {
		t.Fatalf("echo with a delay: got %d bytes, want the %d sent", len(got), len(data))
	}
}

func TestBlackholeThenHeal(t *testing.T) {
	_, p := setup(t, true)
	p.Set(Fault{Blackhole: true})
	c := dial(t, p)
	data := payload(64 << 10)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("read through a blackhole: err = %v, want a deadline exceeded", err)
	}
	// Healing lets the held bytes through, intact and in order.
	p.Set(Fault{})
	_ = c.SetReadDeadline(time.Time{})
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after healing: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("after healing: got %d bytes back, want the %d sent", len(got), len(data))
	}
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF)
}

func TestResetOpenAndNew(t *testing.T) {
	_, p := setup(t, true)
	open := dial(t, p)
	if got := roundTripNoClose(t, open, []byte("before")); string(got) != "before" {
		t.Fatalf("echo before the reset = %q", got)
	}
	p.Set(Fault{Reset: true})
	if _, err := open.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read on an open connection after Reset: err = %v, want ECONNRESET", err)
	}
	// The proxy resets a new connection as soon as it accepts it; the
	// reset may reach the client while it is still in connect, which then
	// fails with it (seen in CI), or later, at the read.
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		t.Cleanup(func() { c.Close() })
		_, _ = c.Write([]byte("x"))
		_, err = c.Read(make([]byte, 1))
	}
	if !isReset(err) {
		t.Fatalf("a new connection under Reset: err = %v, want a reset", err)
	}
	p.Set(Fault{})
	if got := roundTrip(t, dial(t, p), []byte("after")); string(got) != "after" {
		t.Fatalf("echo after healing = %q", got)
	}
}

// roundTripNoClose writes data and reads len(data) bytes back.
func roundTripNoClose(t *testing.T, c net.Conn, data []byte) []byte {
	t.Helper()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCutUp(t *testing.T) {
	u, p := setup(t, false)
	const cut = 100_000
	p.Set(Fault{CutUp: cut})
	c := dial(t, p)
	_, werr := c.Write(payload(1 << 20))
	_, rerr := c.Read(make([]byte, 1))
	if werr == nil && !isReset(rerr) {
		t.Fatalf("write of 1 MiB through a cut at %d bytes: write err nil, read err %v; want a reset", cut, rerr)
	}
	if n := <-u.received; n != cut {
		t.Fatalf("the server received %d bytes, want exactly %d before the cut", n, cut)
	}
}

func TestCutDown(t *testing.T) {
	_, p := setup(t, true)
	const cut = 1000
	p.Set(Fault{CutDown: cut})
	c := dial(t, p)
	go func() { _, _ = c.Write(payload(64 << 10)) }()
	got, err := io.ReadAll(c)
	if !isReset(err) && err != nil {
		t.Fatalf("read through a cut: %v", err)
	}
	if len(got) != cut || !bytes.Equal(got, payload(cut)) {
		t.Fatalf("read %d bytes through a cut at %d, want exactly the first %d", len(got), cut, cut)
	}
}

func TestDrip(t *testing.T) {
	_, p := setup(t, true)
	p.Set(Fault{DripBytes: 7, DripEvery: 100 * time.Microsecond})
	data := payload(3000)
	if got := roundTrip(t, dial(t, p), data); !bytes.Equal(got, data) {
		t.Fatalf("echo through a drip: got %d bytes, want the %d sent", len(got), len(data))
	}
	// A drip of one byte an hour delivers no byte before a short deadline.
	p.Set(Fault{DripBytes: 1, DripEvery: time.Hour})
	c := dial(t, p)
	if _, err := c.Write([]byte("slow")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); !isTimeout(err) {
		t.Fatalf("read through a one-byte-an-hour drip: n = %d, err = %v; want a deadline exceeded", n, err)
	}
}

func TestCloseEndsHeldConnections(t *testing.T) {
	u := startUpstream(t, true)
	p, err := Start(u.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p.Set(Fault{Blackhole: true})
	c := dial(t, p)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	// Close must not wait for the blackhole to lift.
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBadUpstream(t *testing.T) {
	if _, err := Start("no-port"); err == nil {
		t.Fatal(`Start("no-port") succeeded`)
	}
}
