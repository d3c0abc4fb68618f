// Package detach lets an HTTP/1 request whose reply will come much later
// (a change feed request waiting for the next append) give up what
// net/http holds for it while it waits: the goroutine serving its
// connection, that goroutine's stack and the connection's 4 KB read and
// write buffers. What is left is the connection itself, a few hundred
// bytes.
//
// The handler calls Detach, which takes the connection from net/http
// (http.Hijacker) and returns a Reply. Whoever finishes the request later,
// from any goroutine, writes the reply into it as into any
// http.ResponseWriter and calls Finish: the reply is written to the
// connection, and the connection goes back to the server through the
// listener returned by Listen, as if newly accepted, so that the client's
// next request on it is served as usual (keep-alive).
//
// A detached request has no goroutine reading its connection, so a
// client that hangs up is noticed only when its reply is written. The
// connection stays open until then: a waiting request has a deadline.
//
// Use it as:
//
//	d := detach.New(detach.Options{IdleTimeout: srv.IdleTimeout})
//	srv.Serve(d.Listen(ln))
//	// in the handler: if rep, ok := d.Detach(w, r); ok { ...later: write to rep; rep.Finish() }
//	// at shutdown, before srv.Shutdown: d.Close(); then d.Wait(ctx)
package detach

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WriteTimeout bounds the writing of a detached reply: a client that
// does not read it loses its connection instead of holding the writer.
const WriteTimeout = 10 * time.Second

// Options configure a Detacher.
type Options struct {
	// IdleTimeout is how long a connection given back may wait for the
	// client's next request: the server's http.Server.IdleTimeout (or its
	// ReadTimeout when that is zero). net/http gives a new connection its
	// ReadHeaderTimeout for the first request, usually far shorter than
	// the idle time a keep-alive connection is allowed; a connection
	// given back gets this instead, as if it had never left. Zero leaves
	// net/http's choice.
	IdleTimeout time.Duration
}

// Detacher detaches requests from the connections of one server.
type Detacher struct {
	idle time.Duration
	back chan net.Conn // connections going back to the server

	mu      sync.Mutex
	pending sync.WaitGroup
	held    atomic.Int64
	done    chan struct{} // closed by Close: no connection goes back any more
	once    sync.Once
}

// New returns a Detacher; its Listen must wrap the server's listener.
func New(o Options) *Detacher {
	return &Detacher{idle: o.IdleTimeout, back: make(chan net.Conn), done: make(chan struct{})}
}

// Detach takes the connection of the request r, which w is serving, from
// net/http and returns the Reply that will be written to it. It does not
// detach (ok false) a request that is not HTTP/1, has a body, or whose
// ResponseWriter cannot hijack its connection (an HTTP/2 stream, a test
// recorder, another front end), nor any request after Close: the caller
// then serves it as usual. Headers already set on w are kept. After a
// successful Detach the handler must return without touching w again.
func (d *Detacher) Detach(w http.ResponseWriter, r *http.Request) (*Reply, bool) {
	if r.ProtoMajor != 1 || r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return nil, false
	}
	d.mu.Lock()
	if d.isClosed() {
		d.mu.Unlock()
		return nil, false
	}
	// Counted before the hijack so that Wait cannot miss it.
	d.pending.Add(1)
	d.held.Add(1)
	d.mu.Unlock()
	// Kept flat while the request waits: a map costs several times more.
	var kept []string
	for k, vs := range w.Header() {
		for _, v := range vs {
			kept = append(kept, k, v)
		}
	}
	nc, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		d.held.Add(-1)
		d.pending.Done()
		return nil, false
	}
	rep := &Reply{d: d, conn: nc, kept: kept, head: r.Method == http.MethodHead, close: r.Close}
	// Bytes the client sent after this request (pipelining) were read
	// into net/http's buffer; they are the next request's and must reach
	// the server with the connection.
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		rep.unread = slices.Clone(b)
	}
	return rep, true
}

// Listen wraps ln: its Accept returns ln's connections and those whose
// detached reply is written, which the server serves as new ones.
func (d *Detacher) Listen(ln net.Listener) net.Listener {
	l := &listener{Listener: ln, d: d, accepted: make(chan accepted), stop: make(chan struct{})}
	go l.pump()
	return l
}

// Close makes the connections of replies finished from now on close
// instead of going back to the server (their reply says so), and Detach
// refuse. A server calls it when it starts to shut down, before it
// releases the detached requests.
func (d *Detacher) Close() {
	// Under mu, so that a Detach either sees it or is counted before
	// Wait can start.
	d.mu.Lock()
	d.once.Do(func() { close(d.done) })
	d.mu.Unlock()
}

// Wait returns when every detached request has been finished, or with
// ctx's error when ctx ends first.
func (d *Detacher) Wait(ctx context.Context) error {
	all := make(chan struct{})
	go func() { d.pending.Wait(); close(all) }()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Held is the number of requests detached and not finished yet.
func (d *Detacher) Held() int { return int(d.held.Load()) }

// isClosed reports whether Close was called: no connection goes back
// any more.
func (d *Detacher) isClosed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// giveBack hands c to the server, or closes it once the server no
// longer takes connections.
func (d *Detacher) giveBack(c net.Conn) {
	select {
	case d.back <- c:
	case <-d.done:
		_ = c.Close()
	}
}

// Reply is the reply of a detached request: an http.ResponseWriter that
// buffers the reply until Finish writes it. It is used by one goroutine
// at a time.
type Reply struct {
	d      *Detacher
	conn   net.Conn
	unread []byte
	head   bool // a HEAD request: the reply has no body
	close  bool // the client asked to close after this request

	kept     []string // header keys and values set before Detach
	header   http.Header
	status   int
	body     []byte
	finished bool
}

// Header is the reply's header map.
func (r *Reply) Header() http.Header {
	if r.header == nil {
		r.header = make(http.Header, len(r.kept)/2+4)
		for i := 0; i+1 < len(r.kept); i += 2 {
			r.header[r.kept[i]] = append(r.header[r.kept[i]], r.kept[i+1])
		}
		r.kept = nil
	}
	return r.header
}

// WriteHeader sets the reply's status; only the first call counts.
func (r *Reply) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Write appends to the reply's body.
func (r *Reply) Write(b []byte) (int, error) {
	if r.finished {
		return 0, http.ErrHijacked
	}
	r.WriteHeader(http.StatusOK)
	r.body = append(r.body, b...)
	return len(b), nil
}

// ErrFinished is returned by a second Finish.
var ErrFinished = errors.New("detach: the reply was already finished")

// Finish writes the reply to the connection and gives the connection
// back to the server, or closes it when the client or the server asked
// for that or the write failed. It returns the write's error.
func (r *Reply) Finish() error {
	if r.finished {
		return ErrFinished
	}
	r.finished = true
	defer r.d.pending.Done()
	defer r.d.held.Add(-1)
	closing := r.close || r.d.isClosed()
	msg := r.appendReply(make([]byte, 0, 256+len(r.body)), closing)
	_ = r.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err := r.conn.Write(msg)
	_ = r.conn.SetWriteDeadline(time.Time{})
	r.body = nil
	if err != nil || closing {
		_ = r.conn.Close()
		return err
	}
	r.d.giveBack(&givenBack{Conn: r.conn, unread: r.unread, idle: r.d.idle})
	return nil
}

// appendReply appends the reply in HTTP/1.1's form, with the headers
// net/http would add: Date, Content-Length and, when the connection is
// to close, Connection: close.
func (r *Reply) appendReply(b []byte, closing bool) []byte {
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	h := r.Header()
	if h.Get("Date") == "" {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if h.Get("Content-Length") == "" && bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(r.body)))
	}
	if closing {
		h.Set("Connection", "close")
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	if !r.head && bodyAllowed(status) {
		b = append(b, r.body...)
	}
	return b
}

// appendHeaderValue appends v with CR and LF replaced by spaces, as
// net/http does, so that no value can split the header.
func appendHeaderValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// givenBack is a connection on its way back to the server. Its first
// reads return the bytes read from it before (the client's pipelined
// next request), and the first read deadline the server sets (net/http's
// ReadHeaderTimeout for a new connection) is stretched to the idle
// timeout when the client has sent nothing yet: between keep-alive
// requests it may wait that long.
type givenBack struct {
	net.Conn
	unread []byte
	idle   time.Duration
	armed  bool
}

func (c *givenBack) Read(p []byte) (int, error) {
	if len(c.unread) > 0 {
		n := copy(p, c.unread)
		c.unread = c.unread[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *givenBack) SetReadDeadline(t time.Time) error {
	if !c.armed {
		c.armed = true
		if c.idle > 0 && len(c.unread) == 0 && !t.IsZero() {
			if idle := time.Now().Add(c.idle); idle.After(t) {
				t = idle
			}
		}
	}
	return c.Conn.SetReadDeadline(t)
}

// Unwrap returns the connection underneath, for hooks that look for
// their own connection type (http.Server.ConnState).
func (c *givenBack) Unwrap() net.Conn { return c.Conn }

// listener merges the connections the wrapped listener accepts with the
// ones given back. One goroutine accepts from the wrapped listener, so
// that Accept can wait on both.
type listener struct {
	net.Listener
	d        *Detacher
	accepted chan accepted
	stop     chan struct{}
	once     sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

func (l *listener) pump() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- accepted{c, err}:
		case <-l.stop:
			if c != nil {
				_ = c.Close()
			}
			return
		}
		if err != nil && !isTemporary(err) {
			return
		}
	}
}

func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.d.back:
		return c, nil
	case a := <-l.accepted:
		return a.c, a.err
	case <-l.stop:
		return nil, net.ErrClosed
	}
}

// Close closes the wrapped listener. Connections given back from now on
// are closed: the server no longer accepts.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.stop)
		l.d.Close()
	})
	return l.Listener.Close()
}
