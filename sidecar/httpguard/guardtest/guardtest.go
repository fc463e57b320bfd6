// Package guardtest checks, over real loopback connections, that an HTTP server built with
// httpguard ends slow bodies and idle connections and caps slow bodies: the shared proof for
// serve and the dashboard.
package guardtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Bound is how long a check waits before it calls the server stuck: a guard against a hanging
// test, far above the short timeouts the tests configure, not a performance threshold.
const Bound = 15 * time.Second

// dial opens a loopback connection to addr (host:port).
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// StartSlowBody sends the headers of a POST to path announcing a 64 KiB body, and one byte of
// it, and returns the connection with the rest never sent.
func StartSlowBody(t testing.TB, addr, path string) net.Conn {
	t.Helper()
	conn := dial(t, addr)
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 65536\r\n\r\na", path, addr); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitClosed reads (and ignores any answer) until the server closes conn; fails after Bound.
func waitClosed(t testing.TB, conn net.Conn, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(Bound))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %s", what, Bound)
	}
}

// ClosesSlowBody fails t unless the server ends a request whose body stops arriving.
func ClosesSlowBody(t testing.TB, addr, path string) {
	t.Helper()
	waitClosed(t, StartSlowBody(t, addr, path), "slow body to "+path)
}

// ClosesIdle fails t unless the server closes a keep-alive connection left idle after one
// complete GET of path.
func ClosesIdle(t testing.TB, addr, path string) {
	t.Helper()
	conn := dial(t, addr)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(Bound))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatalf("GET %s: the server closed at once; want a keep-alive connection to test", path)
	}
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("idle connection after GET %s: still open after %s", path, Bound)
	}
}

// CapsSlowBodies opens perIP+1 slow bodies to path from this address at once and fails t
// unless one of them is refused with 503 without its body being read while the others wait,
// and, once they are gone, a request is served again.
func CapsSlowBodies(t testing.TB, addr, path string, perIP int) {
	t.Helper()
	conns := make([]net.Conn, perIP+1)
	answers := make(chan int, len(conns))
	for i := range conns {
		conns[i] = StartSlowBody(t, addr, path)
		go func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(Bound))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- 0
				return
			}
			resp.Body.Close()
			answers <- resp.StatusCode
		}(conns[i])
	}
	// The admitted ones wait for bodies that never come, so the first answer is the refusal.
	if status := <-answers; status != http.StatusServiceUnavailable {
		t.Fatalf("%d slow bodies to %s at once: first answer %d, want 503 for the one over the cap", len(conns), path, status)
	}
	for _, c := range conns {
		c.Close()
	}
	for deadline := time.Now().Add(Bound); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Post("http://"+addr+path, "application/x-www-form-urlencoded", strings.NewReader("a=b"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the slow bodies went away, %s still refuses: %v", path, err)
		}
	}
}
