package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDrainGivesEachStepItsOwnDeadline: a client that holds its request
// past the shutdown timeout must not leave the snapshot drain an expired
// deadline.
func TestDrainGivesEachStepItsOwnDeadline(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var left time.Duration
	start := time.Now()
	drain(slog.New(slog.DiscardHandler), timeout,
		drainStep{func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, "cut"},
		drainStep{func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			left = time.Until(d)
			return nil
		}, "pending"})
	if left < timeout/2 {
		t.Fatalf("the second step had %v of its %v left after the first used its own", left, timeout)
	}
	if el := time.Since(start); el > 5*timeout {
		t.Fatalf("drain took %v", el)
	}
}

func TestMaxConnsFlag(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil || c.maxConns != 0 {
		t.Fatalf("default: %d %v", c.maxConns, err)
	}
	c, err = parseConfig(nil, func(k string) string {
		return map[string]string{"SHEETLOG_MAX_CONNS": "77"}[k]
	}, io.Discard)
	if err != nil || c.maxConns != 77 {
		t.Fatalf("env: %d %v", c.maxConns, err)
	}
	c, err = parseConfig([]string{"-max-conns", "12"}, func(k string) string {
		return map[string]string{"SHEETLOG_MAX_CONNS": "77"}[k]
	}, io.Discard)
	if err != nil || c.maxConns != 12 {
		t.Fatalf("flag: %d %v", c.maxConns, err)
	}
	if _, err := parseConfig([]string{"-max-conns", "-1"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("-max-conns -1 accepted")
	}
}

// listening returns the server's "listening" record.
func listening(t *testing.T, p *proc) map[string]any {
	t.Helper()
	for _, line := range strings.Split(p.log(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "sheetlog server listening" {
			return rec
		}
	}
	t.Fatalf("no listening record:\n%s", p.log())
	return nil
}

// TestServerEdge runs the binary: -max-conns is lowered to what the
// open file limit leaves room for, and requests net/http cannot frame
// get a JSON 400 over a raw connection, not a 501 or 505.
func TestServerEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// By default, as many as the limit leaves room for.
	p := startServer(t, t.TempDir())
	if want := min(float64(lim.Max)-fdReserve, autoMaxConns); listening(t, p)["maxConns"] != want {
		t.Fatalf("maxConns %v with a hard limit of %d", listening(t, p)["maxConns"], lim.Max)
	}
	p.kill(t)
	p = startServer(t, t.TempDir(), "-max-conns", "100000000")
	rec := listening(t, p)
	if want := float64(lim.Max) - fdReserve; lim.Max < 100000000 && rec["maxConns"] != want {
		t.Fatalf("maxConns %v with a hard limit of %d", rec["maxConns"], lim.Max)
	}
	if lim.Max < 100000000 && !strings.Contains(p.log(), "-max-conns lowered") {
		t.Fatalf("no warning:\n%s", p.log())
	}

	addr := strings.TrimPrefix(p.url, "http://")
	for _, req := range []string{
		"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
		"POST /v1/sheets/s/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n",
		"GET /v1/sheets/s HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/sheets/s HTTP/3.0\r\nHost: x\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		var resp *http.Response
		for range strings.Count(req, "Host: x") {
			if resp, err = http.ReadResponse(br, nil); err != nil {
				t.Fatalf("%q: %v", req, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		c.Close()
		var m map[string]string
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || json.Unmarshal(body, &m) != nil || m["type"] != "ValidationError" {
			t.Fatalf("%q: %d %s", req, resp.StatusCode, body)
		}
	}
}

func TestSnapshotWritesFlag(t *testing.T) {
	none := func(string) string { return "" }
	if c, err := parseConfig(nil, none, io.Discard); err != nil || c.snapshotWrites != 1 {
		t.Fatalf("default: %d %v", c.snapshotWrites, err)
	}
	c, err := parseConfig(nil, func(k string) string {
		return map[string]string{"SHEETLOG_SNAPSHOT_WRITES": "4"}[k]
	}, io.Discard)
	if err != nil || c.snapshotWrites != 4 {
		t.Fatalf("env: %d %v", c.snapshotWrites, err)
	}
	if c, err := parseConfig([]string{"-snapshot-writes", "8"}, none, io.Discard); err != nil || c.snapshotWrites != 8 {
		t.Fatalf("flag: %d %v", c.snapshotWrites, err)
	}
	for _, bad := range []string{"0", "-2", "many"} {
		if _, err := parseConfig([]string{"-snapshot-writes", bad}, none, io.Discard); err == nil {
			t.Errorf("-snapshot-writes %s accepted", bad)
		}
	}
}
