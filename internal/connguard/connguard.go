// Package connguard stands between a TCP listener and net/http's HTTP/1
// server, at the connection level:
//
//   - it bounds the connections the server holds. When the bound is
//     reached, the connection that has waited longest without a request
//     in progress (one that never finished sending a request head, or a
//     keep-alive connection between requests) is closed to make room, so
//     that connections opened and left half-sent cannot lock clients out:
//     a well-behaved client sends its request as soon as it connects and
//     is served. Only when every held connection is busy with a request
//     does the server stop accepting until one finishes (new connections
//     then wait in the kernel's backlog).
//   - it replaces the plain-text replies net/http writes by itself to a
//     request it cannot frame (400, 501 for a Transfer-Encoding other
//     than chunked, 505 for an HTTP version other than 1.x) by a 400 with
//     the body the caller chooses, so that no request gets a 5xx.
//
// Use it as:
//
//	g := connguard.New(connguard.Options{MaxConns: n, ErrorBody: f})
//	srv := &http.Server{ConnState: g.ConnState, ...}
//	srv.Serve(g.Listen(ln))
package connguard

import (
	"bytes"
	"container/list"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Options configure a Guard.
type Options struct {
	// MaxConns bounds the connections held at once (at least 1).
	MaxConns int
	// ErrorBody returns the JSON body of the 400 that replaces one of
	// net/http's own replies to a request it could not frame; message
	// says what was wrong. Nil leaves net/http's replies as they are.
	ErrorBody func(message string) []byte
}

// Guard tracks the connections of one server. Its ConnState method must
// be the server's ConnState hook.
type Guard struct {
	max       int
	errorBody func(string) []byte

	mu   sync.Mutex
	held int
	// waiting holds the connections with no request in progress, the
	// longest waiting at the front: the ones to shed first.
	waiting list.List
	// room is signalled when a connection closes or starts waiting, so
	// that an Accept held back by busy connections looks again.
	room chan struct{}

	accepted, shed atomic.Uint64
}

// New returns a guard.
func New(o Options) *Guard {
	return &Guard{max: max(1, o.MaxConns), errorBody: o.ErrorBody, room: make(chan struct{}, 1)}
}

// Stats are a guard's counters.
type Stats struct {
	// Held is the connections open now; Waiting those of them with no
	// request in progress.
	Held, Waiting int
	// Accepted counts every connection accepted; Shed those closed to
	// make room for a new one.
	Accepted, Shed uint64
}

// Stats returns the guard's counters.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return Stats{Held: g.held, Waiting: g.waiting.Len(), Accepted: g.accepted.Load(), Shed: g.shed.Load()}
}

// Listen wraps ln: its Accept returns guarded connections.
func (g *Guard) Listen(ln net.Listener) net.Listener {
	return &listener{Listener: ln, g: g, done: make(chan struct{})}
}

type listener struct {
	net.Listener
	g         *Guard
	done      chan struct{}
	closeOnce sync.Once
}

// Accept takes the next connection and hands it over once there is room
// for it. The one connection held here meanwhile is the only one over
// the bound; the rest wait in the kernel's backlog.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for !l.g.hasRoom() {
		select {
		case <-l.g.room:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return l.g.admit(c), nil
}

func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// hasRoom reports whether a new connection can be admitted: under the
// bound, or with a waiting connection to shed.
func (g *Guard) hasRoom() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held < g.max || g.waiting.Len() > 0
}

func (g *Guard) admit(nc net.Conn) *conn {
	c := &conn{Conn: nc, g: g}
	g.mu.Lock()
	var victim *conn
	if g.held >= g.max && g.waiting.Len() > 0 {
		victim = g.waiting.Remove(g.waiting.Front()).(*conn)
		victim.elem = nil
	}
	g.held++
	// A new connection has sent nothing yet: it waits, at the back.
	c.elem = g.waiting.PushBack(c)
	g.mu.Unlock()
	g.accepted.Add(1)
	if victim != nil {
		g.shed.Add(1)
		_ = victim.Close()
	}
	return c
}

// ConnState is the server's ConnState hook: it tells the guard which
// connections have a request in progress.
func (g *Guard) ConnState(nc net.Conn, state http.ConnState) {
	c := guarded(nc)
	if c == nil {
		return
	}
	switch state {
	case http.StateActive, http.StateHijacked:
		g.mu.Lock()
		if c.elem != nil {
			g.waiting.Remove(c.elem)
			c.elem = nil
		}
		g.mu.Unlock()
	case http.StateIdle:
		g.mu.Lock()
		if c.elem == nil && !c.closed {
			c.elem = g.waiting.PushBack(c)
		}
		g.mu.Unlock()
		g.signal()
	}
}

// guarded finds the guarded connection nc is or wraps (a wrapper that
// has an Unwrap method, as internal/detach's has), or nil.
func guarded(nc net.Conn) *conn {
	for {
		if c, ok := nc.(*conn); ok {
			return c
		}
		u, ok := nc.(interface{ Unwrap() net.Conn })
		if !ok {
			return nil
		}
		nc = u.Unwrap()
	}
}

func (g *Guard) signal() {
	select {
	case g.room <- struct{}{}:
	default:
	}
}

func (g *Guard) release(c *conn) {
	g.mu.Lock()
	c.closed = true
	if c.elem != nil {
		g.waiting.Remove(c.elem)
		c.elem = nil
	}
	g.held--
	g.mu.Unlock()
	g.signal()
}

// conn is a guarded connection.
type conn struct {
	net.Conn
	g *Guard
	// elem is the connection's place in g.waiting, nil while a request
	// is in progress; closed is set once it is released. Both are
	// guarded by g.mu.
	elem      *list.Element
	closed    bool
	closeOnce sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.g.release(c) })
	return err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.g.errorBody != nil {
		if msg, ok := ownReply(p); ok {
			if _, err := c.Conn.Write(badRequest(c.g.errorBody(msg))); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// net/http writes its own replies to requests it cannot frame straight
// to the connection, in one Write, in this form:
//
//	HTTP/1.1 <code> <reason>[: <detail>]<ownHeaders><body>
//
// then closes the connection. Replies from handlers never take this form:
// their headers are sorted (Connection before Content-Type) and always
// include Date.
const ownHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// ownReply recognises one of net/http's own replies that must not stand
// (400 without a JSON body, 501, 505) and says what was wrong. 431
// (request headers over the server's limit) is a client error already
// and is left alone.
func ownReply(p []byte) (string, bool) {
	if len(p) > 1024 || !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) {
		return "", false
	}
	line, body, ok := bytes.Cut(p[len("HTTP/1.1 "):], []byte(ownHeaders))
	if !ok || len(line) < 4 || line[3] != ' ' {
		return "", false
	}
	code, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return "", false
	}
	_, detail, _ := bytes.Cut(line, []byte(": "))
	switch {
	case code == http.StatusBadRequest && bytes.Equal(body, line):
		if len(detail) == 0 {
			return "the request is not valid HTTP/1.1", true
		}
		return "the request is not valid HTTP/1.1: " + string(detail), true
	case code == http.StatusNotImplemented && string(body) == "Unsupported transfer encoding":
		return "the only Transfer-Encoding accepted is a single chunked; send the body with it or with a Content-Length", true
	case code == http.StatusHTTPVersionNotSupported && bytes.Equal(body, line):
		return "this server speaks HTTP/1.0 and HTTP/1.1 only", true
	}
	return "", false
}

func badRequest(body []byte) []byte {
	b := make([]byte, 0, 192+len(body))
	b = append(b, "HTTP/1.1 400 Bad Request\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n\r\n"...)
	return append(b, body...)
}
