package detach

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// server runs an HTTP/1 server whose /wait requests are detached and
// answered when the test sends on the returned channel (or at once, for
// /now). The handler sets a header before detaching, as pkg/api does.
func server(t *testing.T) (d *Detacher, addr string, release chan string) {
	t.Helper()
	return serverWith(t, 5*time.Second)
}

// serverWith is server with the given http.Server.ReadHeaderTimeout.
func serverWith(t *testing.T, readHeaderTimeout time.Duration) (d *Detacher, addr string, release chan string) {
	t.Helper()
	d = New(Options{IdleTimeout: time.Minute})
	release = make(chan string, 100)
	waiting := make(chan *Reply, 1000)
	go func() {
		for body := range release {
			rep := <-waiting
			rep.Header().Set("Content-Type", "text/plain")
			rep.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(rep, body)
			_ = rep.Finish()
		}
	}()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Vary", "Origin")
		if r.URL.Path == "/wait" {
			if rep, ok := d.Detach(w, r); ok {
				waiting <- rep
				return
			}
			w.WriteHeader(http.StatusTeapot) // not detached
			return
		}
		_, _ = io.WriteString(w, "now "+r.URL.Path)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(d.Listen(ln)) }()
	t.Cleanup(func() {
		d.Close()
		_ = srv.Close()
		close(release)
	})
	return d, ln.Addr().String(), release
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func read(t *testing.T, br *bufio.Reader, method string) *http.Response {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	return res
}

func body(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// A detached request's reply reaches the client with the headers set
// before and after Detach, and the connection then serves the client's
// next request (keep-alive), itself detached again.
func TestReplyThenKeepAlive(t *testing.T) {
	d, addr, release := server(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, want := range []string{"first", "second"} {
		if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return d.Held() == 1 })
		release <- want
		res := read(t, br, "GET")
		if res.StatusCode != 200 || body(res) != want || res.Header.Get("Vary") != "Origin" ||
			res.Header.Get("Content-Type") != "text/plain" || res.Header.Get("Date") == "" || res.Close {
			t.Fatalf("reply %d: %d %v", i, res.StatusCode, res.Header)
		}
		waitFor(t, func() bool { return d.Held() == 0 })
	}
	if _, err := io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if res := read(t, br, "GET"); body(res) != "now /plain" {
		t.Fatalf("after the detached replies: %q", body(res))
	}
}

// A request pipelined behind a detached one was read into net/http's
// buffer; it is served, in order, after the detached reply.
func TestPipelinedRequestIsKept(t *testing.T) {
	d, addr, release := server(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.Held() == 1 })
	release <- "waited"
	br := bufio.NewReader(c)
	if res := read(t, br, "GET"); body(res) != "waited" {
		t.Fatalf("first reply %q", body(res))
	}
	if res := read(t, br, "GET"); body(res) != "now /next" {
		t.Fatalf("pipelined reply %q", body(res))
	}
}

// Connection: close from the client, HTTP/1.0 and HEAD are honoured.
func TestCloseAndHead(t *testing.T) {
	for _, tc := range []struct {
		name, req, method string
		close             bool
		body              string
	}{
		{"close", "GET /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET", true, "b"},
		{"http10", "GET /wait HTTP/1.0\r\n\r\n", "GET", true, "b"},
		{"head", "HEAD /wait HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, addr, release := server(t)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return d.Held() == 1 })
			release <- "b"
			br := bufio.NewReader(c)
			res := read(t, br, tc.method)
			if res.StatusCode != 200 || body(res) != tc.body || res.Close != tc.close || res.ContentLength != 1 {
				t.Fatalf("%d close=%v length=%d body %q", res.StatusCode, res.Close, res.ContentLength, body(res))
			}
			if tc.close {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("the connection stays open after a closing reply: %v", err)
				}
			}
		})
	}
}

// After Close, a reply says Connection: close and its connection is
// closed rather than given back; new requests are not detached.
func TestCloseEndsKeepAlive(t *testing.T) {
	d, addr, release := server(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.Held() == 1 })
	d.Close()
	release <- "last"
	br := bufio.NewReader(c)
	if res := read(t, br, "GET"); !res.Close || body(res) != "last" {
		t.Fatalf("close=%v %q", res.Close, body(res))
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the connection stays open after Close: %v", err)
	}
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/wait")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Fatalf("a request detached after Close: %d", res.StatusCode)
	}
}

// What cannot be detached is left to the caller: a recorder, a request
// with a body.
func TestNotDetachable(t *testing.T) {
	d := New(Options{})
	if _, ok := d.Detach(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); ok {
		t.Fatal("a recorder was detached")
	}
	_, addr, _ := server(t)
	res, err := http.Post("http://"+addr+"/wait", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Fatalf("a request with a body was detached: %d", res.StatusCode)
	}
	if err := d.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A detached request holds no goroutine.
func TestDetachedRequestsHoldNoGoroutine(t *testing.T) {
	d, addr, release := server(t)
	const n = 200
	g0 := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return d.Held() == n })
	if g := runtime.NumGoroutine() - g0; g > n/10 {
		t.Fatalf("%d detached requests hold %d goroutines", n, g)
	}
	for range conns {
		release <- "x"
	}
	for _, c := range conns {
		if res := read(t, bufio.NewReader(c), "GET"); body(res) != "x" {
			t.Fatalf("%q", body(res))
		}
	}
}

func TestFinishTwice(t *testing.T) {
	d := New(Options{})
	a, b := net.Pipe()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	d.pending.Add(1)
	d.held.Add(1)
	r := &Reply{d: d, conn: a, close: true}
	if err := r.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(); err != ErrFinished {
		t.Fatalf("second Finish: %v", err)
	}
}

// A header value cannot split the reply's head.
func TestHeaderValuesCannotSplit(t *testing.T) {
	r := &Reply{kept: []string{"X-A", "1\r\nX-Injected: 2"}}
	got := string(r.appendReply(nil, false))
	if strings.Contains(got, "\r\nX-Injected") {
		t.Fatalf("split: %q", got)
	}
}

// A connection given back may stay idle as long as any keep-alive
// connection (IdleTimeout), not only the ReadHeaderTimeout net/http gives
// a new one; once the client starts a request, that timeout applies.
func TestGivenBackConnectionsKeepTheIdleTimeout(t *testing.T) {
	d, addr, release := serverWith(t, 100*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return d.Held() == 1 })
	release <- "a"
	if res := read(t, br, "GET"); body(res) != "a" {
		t.Fatalf("%q", body(res))
	}
	time.Sleep(400 * time.Millisecond) // 4 ReadHeaderTimeouts
	if _, err := io.WriteString(c, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if res := read(t, br, "GET"); body(res) != "now /later" {
		t.Fatalf("%q", body(res))
	}
	// The header timeout still holds a request that is started and not
	// finished.
	if _, err := io.WriteString(c, "GET /slow HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("a half-sent request head outlived the header timeout: %v", err)
	}
}
