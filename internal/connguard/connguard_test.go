package connguard

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs an HTTP server behind a guard (nil: no guard) on a loopback
// port and returns its address.
func serve(t *testing.T, g *Guard, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	if g != nil {
		srv.ConnState = g.ConnState
		ln = g.Listen(ln)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "ok")
})

func jsonBody(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"type": "ValidationError", "message": msg})
	return b
}

// halfOpen opens a connection that sends part of a request head and
// nothing more.
func halfOpen(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedByServer reports whether the server closed c (within d).
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// get sends one request on a new connection and returns the status.
func get(t *testing.T, addr string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHalfOpenConnectionsAreShed: with the bound reached by connections
// that never finish a request, a new client is served, and the longest
// waiting connection is the one closed.
func TestHalfOpenConnectionsAreShed(t *testing.T) {
	g := New(Options{MaxConns: 4})
	addr := serve(t, g, ok)
	var idle []net.Conn
	for range 4 {
		idle = append(idle, halfOpen(t, addr))
		time.Sleep(10 * time.Millisecond) // accepted in this order
	}
	waitFor(t, "4 connections held", func() bool { return g.Stats().Held == 4 })

	if st := get(t, addr); st != 200 {
		t.Fatalf("status %d", st)
	}
	if !closedByServer(idle[0], 5*time.Second) {
		t.Fatal("the oldest half-open connection was not shed")
	}
	for _, c := range idle[1:] {
		if closedByServer(c, 50*time.Millisecond) {
			t.Fatal("a younger half-open connection was shed")
		}
	}

	// Many more: the server never holds more than the bound (plus the
	// one being admitted), and clients are still served.
	for range 100 {
		halfOpen(t, addr)
	}
	for range 20 {
		if st := get(t, addr); st != 200 {
			t.Fatalf("status %d", st)
		}
		if h := g.Stats().Held; h > 5 {
			t.Fatalf("%d connections held", h)
		}
	}
	waitFor(t, "the flood accepted", func() bool { return g.Stats().Accepted >= 124 })
	if st := g.Stats(); st.Held > 5 || st.Shed < 100 {
		t.Fatalf("stats %+v", st)
	}
}

// TestKeepAliveConnectionsWaitBetweenRequests: a keep-alive connection
// between requests may be shed (the client reconnects); one whose
// request is in progress is never shed, and when every held connection
// is busy a new one waits for room instead of being refused.
func TestBusyConnectionsAreNotShed(t *testing.T) {
	g := New(Options{MaxConns: 2})
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(2)
	addr := serve(t, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started.Done()
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	errs := make(chan error, 3)
	slow := func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr + "/slow")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = errors.New(resp.Status)
			}
		}
		errs <- err
	}
	go slow()
	go slow()
	started.Wait()

	third := make(chan int, 1)
	go func() { third <- get(t, addr) }()
	select {
	case st := <-third:
		t.Fatalf("a third connection was served (%d) while both held ones were busy", st)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a busy connection failed: %v", err)
		}
	}
	if st := <-third; st != 200 {
		t.Fatalf("third: %d", st)
	}
	if s := g.Stats(); s.Shed != 0 {
		t.Fatalf("shed %d", s.Shed)
	}
}

// raw sends one or more requests on one connection and reads as many
// replies.
func raw(t *testing.T, addr, requests string, n int) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, requests); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reply %d to %q: %v", len(out), requests, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

// TestFramingErrorsAreClientErrors: requests net/http cannot frame get a
// 400 with a JSON body instead of net/http's plain 400, 501 and 505,
// over a raw connection, on a fresh or a kept-alive connection.
func TestFramingErrorsAreClientErrors(t *testing.T) {
	g := New(Options{MaxConns: 16, ErrorBody: jsonBody})
	guarded := serve(t, g, ok)
	plain := serve(t, nil, ok)
	const good = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, c := range []struct {
		name, req string
		plain     int // what net/http answers by itself
		detail    string
	}{
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
		{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1"},
		{"gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"},
		{"gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "Transfer-Encoding"},
		{"two TE fields", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "Transfer-Encoding"},
		{"identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", 501, "Transfer-Encoding"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "not valid HTTP/1.1"},
		{"bad version", "GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400, "not valid HTTP/1.1"},
		{"bad header", "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "not valid HTTP/1.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if st := raw(t, plain, c.req, 1)[0].StatusCode; st != c.plain {
				t.Fatalf("net/http alone answers %d, not %d: the test is out of date", st, c.plain)
			}
			for _, reqs := range []string{c.req, good + c.req} {
				replies := raw(t, guarded, reqs, strings.Count(reqs, "Host: x")+boolInt(c.name == "no Host"))
				last := replies[len(replies)-1]
				if len(replies) == 2 && replies[0].StatusCode != 200 {
					t.Fatalf("the good request first: %d", replies[0].StatusCode)
				}
				body, _ := io.ReadAll(last.Body)
				var m map[string]string
				if last.StatusCode != 400 || last.Header.Get("Content-Type") != "application/json" ||
					json.Unmarshal(body, &m) != nil || m["type"] != "ValidationError" || !strings.Contains(m["message"], c.detail) {
					t.Fatalf("%d %q %s", last.StatusCode, last.Header.Get("Content-Type"), body)
				}
				if last.Header.Get("Content-Length") != strconv.Itoa(len(body)) || !last.Close {
					t.Fatalf("headers %v", last.Header)
				}
			}
		})
	}

	// A reply of the handler's own is never rewritten, whatever it holds.
	mimic := serve(t, g, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		w.WriteHeader(501)
		_, _ = io.WriteString(w, "Unsupported transfer encoding")
	}))
	if st := raw(t, mimic, good, 1)[0].StatusCode; st != 501 {
		t.Fatalf("the handler's own 501 became %d", st)
	}
	// 431 (headers over the limit) is left to net/http.
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", http.DefaultMaxHeaderBytes+8192) + "\r\n\r\n"
	if st := raw(t, guarded, big, 1)[0].StatusCode; st != 431 {
		t.Fatalf("huge headers: %d", st)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unwrapper wraps a connection as internal/detach does when it gives one
// back to the server with bytes read ahead.
type unwrapper struct{ net.Conn }

func (u unwrapper) Unwrap() net.Conn { return u.Conn }

// The guard follows a guarded connection through a wrapper that has an
// Unwrap method: its states still move it in and out of the waiting list.
func TestWrappedConnectionsAreTracked(t *testing.T) {
	g := New(Options{MaxConns: 4})
	a, b := net.Pipe()
	defer b.Close()
	c := g.admit(a)
	w := unwrapper{c}
	g.ConnState(w, http.StateActive)
	if s := g.Stats(); s.Held != 1 || s.Waiting != 0 {
		t.Fatalf("active through a wrapper: %+v", s)
	}
	g.ConnState(w, http.StateIdle)
	if s := g.Stats(); s.Waiting != 1 {
		t.Fatalf("idle through a wrapper: %+v", s)
	}
	_ = w.Close()
	if s := g.Stats(); s.Held != 0 || s.Waiting != 0 {
		t.Fatalf("closed through a wrapper: %+v", s)
	}
}
