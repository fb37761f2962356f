package testservers

import (
	"net"
	"testing"
)

// NotHTTP starts a TCP server on 127.0.0.1 that answers every connection
// with a line that is not HTTP and hangs up, for the bad-input tests of the
// drivers; it returns its "host:port" and stops with the test.
func NotHTTP(t testing.TB) string {
	t.Helper()
	return serve(t, func(c net.Conn) bool {
		c.Write([]byte("SSH-2.0-garbage\r\n"))
		c.Close()
		return false
	})
}

// Blackhole starts a TCP server on 127.0.0.1 that accepts connections and
// never answers (a firewalled or hung service); it returns its "host:port"
// and closes the connections when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	return serve(t, func(net.Conn) bool { return true })
}

// serve accepts connections on 127.0.0.1 and hands each to handle, which
// reports whether the connection is to be kept open until the test ends.
func serve(t testing.TB, handle func(net.Conn) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	held := make(chan []net.Conn, 1)
	go func() {
		var keep []net.Conn
		defer func() { held <- keep }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if handle(c) {
				keep = append(keep, c)
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for _, c := range <-held {
			c.Close()
		}
	})
	return ln.Addr().String()
}
