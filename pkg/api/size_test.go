package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// These tests go through a real HTTP server and raw connections, because
// what matters is what the client sees when a body is chunked or its
// Content-Length lies: a reply, never a dropped connection.

func startServer(t *testing.T) (*fixture, string) {
	f := newFixture(t, fixtureOptions{interval: 100})
	f.check = false
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// unsized hides the length of a body so the client sends it chunked.
type unsized struct{ io.Reader }

func TestChunkedBodies(t *testing.T) {
	t.Parallel()
	_, url := startServer(t)
	send := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", url+"/v1/sheets/s1/log", unsized{strings.NewReader(body)})
		req.Header.Set("Content-Type", "application/json")
		if req.ContentLength != 0 && req.ContentLength != -1 {
			t.Fatalf("the body has a length: %d", req.ContentLength)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.TransferEncoding != nil && req.TransferEncoding == nil {
			t.Logf("reply transfer encoding %v", resp.TransferEncoding)
		}
		return resp.StatusCode, string(b)
	}
	ok := `{"sequenceId":0,"entry":` + goodEntry + `}`
	if st, b := send(ok + strings.Repeat(" ", MaxBodyBytes-len(ok))); st != 200 {
		t.Fatalf("64 KiB chunked: %d %s", st, b)
	}
	st, b := send(`{"sequenceId":1,"entry":` + goodEntry + `}` + strings.Repeat(" ", MaxBodyBytes))
	if st != 413 || !strings.Contains(b, `"type":"PayloadTooLarge"`) {
		t.Fatalf("over 64 KiB chunked: %d %s", st, b)
	}
	// A huge chunked body is cut off, not read to its end.
	st, b = send(strings.Repeat("x", 8<<20))
	if st != 413 {
		t.Fatalf("8 MiB chunked: %d %s", st, b)
	}
}

// rawRequest writes head and body on a fresh connection, optionally
// closes the writing side, and reads one reply.
func rawRequest(t *testing.T, url, head, body string, closeWrite bool) (int, map[string]any) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("reply %d is not JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func TestLyingContentLength(t *testing.T) {
	t.Parallel()
	_, url := startServer(t)
	head := func(n int) string {
		return fmt.Sprintf("POST /v1/sheets/s1/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", n)
	}
	good := `{"sequenceId":0,"entry":` + goodEntry + `}`

	// Announces more than the limit, sends little: refused at once,
	// without waiting for the rest.
	st, m := rawRequest(t, url, head(1<<30), good, false)
	if st != 413 || m["type"] != "PayloadTooLarge" {
		t.Fatalf("Content-Length 1 GiB: %d %v", st, m)
	}
	// Announces more than it sends, then stops: the body is short.
	st, m = rawRequest(t, url, head(len(good)+100), good, true)
	if st != 400 || m["type"] != "ValidationError" {
		t.Fatalf("short body: %d %v", st, m)
	}
	// Announces less than it sends: only the announced bytes are the
	// body, which is then not valid JSON.
	st, m = rawRequest(t, url, head(10), good+strings.Repeat(" ", MaxBodyBytes), true)
	if st != 400 || m["type"] != "ValidationError" {
		t.Fatalf("long body: %d %v", st, m)
	}
	// And a body over the limit without Content-Length, chunked by hand.
	chunk := strings.Repeat("y", MaxBodyBytes+1)
	st, m = rawRequest(t, url, "POST /v1/sheets/s1/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk), false)
	if st != 413 || m["type"] != "PayloadTooLarge" {
		t.Fatalf("chunked by hand: %d %v", st, m)
	}
}
