package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// TestCellsByteBound fills A1:CV100 partly with 60 KB values: a range
// whose cells take more than 8 MiB of JSON is refused with 413, without
// the reply being built first; a smaller one is served.
func TestCellsByteBound(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 1 << 20, noWorker: true})
	f.check = false // the 6 MB reply below is checked by hand
	big := strings.Repeat("x", 60_000)
	const n = 300 // 18 MB of values: rows 1 to 3, columns A to CV
	for i := range n {
		f.post("s1", itoa(i), setCell(i/100, i%100, `"value":"`+big+`"`))
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := f.do("GET", "/v1/sheets/s1/cells?range=A1:CV100", "")
	runtime.ReadMemStats(&after)
	if r.status != 413 || r.json(t)["type"] != "PayloadTooLarge" {
		t.Fatalf("A1:CV100: %d %.200s", r.status, r.body)
	}
	// Building the 18 MB reply would allocate at least that much; the
	// refusal needs the engine's view of 300 cells and one cell's JSON.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Fatalf("refusing the range allocated %d bytes", alloc)
	}

	// 100 cells of 60 KB: 6 MB, under the bound.
	r = f.do("GET", "/v1/sheets/s1/cells?range=A1:CV1", "")
	if r.status != 200 || len(r.body) > MaxCellsReplyBytes {
		t.Fatalf("A1:CV1: %d, %d bytes", r.status, len(r.body))
	}
	var reply struct {
		Cells map[string]struct{ Value string } `json:"cells"`
	}
	if err := json.Unmarshal(r.body, &reply); err != nil || len(reply.Cells) != 100 || reply.Cells["CV1"].Value != big {
		t.Fatalf("A1:CV1: %d cells, %v", len(reply.Cells), err)
	}
	// The cell-count limit still comes first.
	if r := f.do("GET", "/v1/sheets/s1/cells?range=A1:CV101", ""); r.status != 400 {
		t.Fatalf("A1:CV101: %d %s", r.status, r.body)
	}
}

// TestLongInputIsNotRepeated: a 900,000-character blob name is refused
// with a message of bounded size.
func TestLongInputIsNotRepeated(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.check = false
	for _, target := range []string{
		"/v1/sheets/s1/blobs/" + strings.Repeat("n", 900_000),
		"/v1/sheets/s1/blobs/d/" + strings.Repeat("%C3%A9", 300_000) + "/",
	} {
		r := f.do("GET", target, "")
		if r.status != 400 || r.json(t)["type"] != "InvalidBlobNameError" {
			t.Fatalf("%d %.200s", r.status, r.body)
		}
		if len(r.body) > 1024 {
			t.Fatalf("the error repeats the name: %d bytes: %.200s...", len(r.body), r.body)
		}
	}
}

// hangupLogs fails like a remote store whose connection was torn down
// because the request's context ended: an error that does not wrap the
// context's.
type hangupLogs struct{ eventlog.Store }

func (s hangupLogs) Log(sheet string) (eventlog.EventLog, error) {
	l, err := s.Store.Log(sheet)
	return hangupLog{l}, err
}

type hangupLog struct{ eventlog.EventLog }

func (l hangupLog) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	if ctx.Err() != nil {
		return eventlog.Page{}, fmt.Errorf("read tcp 10.0.0.1:443: use of closed network connection")
	}
	return l.EventLog.Query(ctx, from, to, known)
}

// TestRoutineErrorsAreNotErrors: a missing blob and a client that hung
// up are logged below ERROR; a failing store still is an ERROR.
func TestRoutineErrorsAreNotErrors(t *testing.T) {
	var logged bytes.Buffer
	f := newFixture(t, fixtureOptions{logs: hangupLogs{logmem.NewStore(logmem.Options{})}})
	f.check = false
	f.h, _ = New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines,
		Logger: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	if r := f.do("GET", "/v1/sheets/s1/blobs/missing", ""); r.status != 404 {
		t.Fatalf("missing blob: %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/v1/sheets/s1/log", nil)
	f.h.ServeHTTP(httptest.NewRecorder(), req)

	levels := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(logged.Bytes()), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		levels[fmt.Sprint(rec["level"])]++
		if rec["level"] == "ERROR" {
			t.Errorf("logged at ERROR: %s", line)
		}
	}
	if levels["INFO"] != 2 || levels["DEBUG"] != 2 {
		t.Fatalf("want two request records at INFO and two store errors at DEBUG, got %v\n%s", levels, logged.String())
	}

	// A store that fails for a client that is still there is an ERROR.
	logged.Reset()
	f.h, _ = New(Config{Logs: brokenLogs{fmt.Errorf("disk on fire")}, Blobs: f.blobs, Engines: f.engines,
		Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	if r := f.do("GET", "/v1/sheets/s1/log", ""); r.status != 503 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if n := strings.Count(logged.String(), `"level":"ERROR"`); n != 2 {
		t.Fatalf("%d ERROR records for a failing store:\n%s", n, logged.String())
	}
}

// TestTokenIsComparedAsDigest: the handler keeps only the digest of the
// expected header and compares digests, whose length is fixed, so the
// comparison says nothing about the token's length.
func TestTokenIsComparedAsDigest(t *testing.T) {
	f := newFixture(t, fixtureOptions{token: "s3cret"})
	h := f.h.(*handler)
	if st, ok := h.auth.(*staticToken); !ok || st.sum != sha256.Sum256([]byte("Bearer s3cret")) {
		t.Fatalf("the handler does not hold the token's digest")
	}
	for _, tok := range []string{"s3cret", "bearer s3cret", "BEARER s3cret"} {
		if r := f.do("GET", "/v1/sheets/s1", "", "Authorization", "Bearer "+strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(tok, "bearer "), "BEARER "), "Bearer ")); r.status != 200 {
			t.Fatalf("%q: %d", tok, r.status)
		}
	}
	for _, tok := range []string{"", "s", "s3cre", "s3cret!", strings.Repeat("s3cret", 1000)} {
		if r := f.do("GET", "/v1/sheets/s1", "", "Authorization", "Bearer "+tok); r.status != 401 {
			t.Fatalf("%q: %d", tok, r.status)
		}
	}
}

// fakeClock is a settable time for the failure limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestAuthFailureLimiter: after a burst of failures an address is held
// back (401 with Retry-After, even with the right token) until it regains
// an attempt; other addresses are not; memory stays bounded.
func TestAuthFailureLimiter(t *testing.T) {
	f := newFixture(t, fixtureOptions{token: "tok"})
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	lim := f.h.(*handler).failures
	lim.now = clock.now
	from := func(addr, auth string) reply {
		t.Helper()
		req := httptest.NewRequest("GET", "/v1/sheets/s1", nil)
		req.RemoteAddr = addr
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return f.serve(req, nil)
	}
	const attacker = "198.51.100.7:40000"
	for i := range authFailureBurst {
		if r := from(attacker, "Bearer guess"+itoa(i)); r.status != 401 || r.header.Get("Retry-After") != "" {
			t.Fatalf("failure %d: %d, Retry-After %q", i, r.status, r.header.Get("Retry-After"))
		}
	}
	// The burst is spent: held back, right token or not.
	for _, auth := range []string{"Bearer guess", "Bearer tok"} {
		r := from("198.51.100.7:40001", auth)
		if r.status != 401 || r.header.Get("Retry-After") != "1" || !strings.Contains(string(r.body), "too many failed attempts") {
			t.Fatalf("%s while held back: %d, Retry-After %q: %s", auth, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	// Another address is served.
	if r := from("198.51.100.8:1", "Bearer tok"); r.status != 200 {
		t.Fatalf("another address: %d %s", r.status, r.body)
	}
	// One attempt per interval comes back.
	clock.t = clock.t.Add(authFailureInterval)
	if r := from(attacker, "Bearer tok"); r.status != 200 {
		t.Fatalf("after an interval: %d %s", r.status, r.body)
	}
	if r := from(attacker, "Bearer guess"); r.status != 401 {
		t.Fatalf("%d", r.status)
	}
	if r := from(attacker, "Bearer tok"); r.status != 401 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a second failure within the interval is not held back: %d", r.status)
	}

	// IPv6 addresses count by /64.
	for i := range authFailureBurst {
		from(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), "Bearer nope")
	}
	if r := from("[2001:db8:1:2:ffff::1]:443", "Bearer tok"); r.status != 401 {
		t.Fatalf("same /64: %d", r.status)
	}
	if r := from("[2001:db8:1:3::1]:443", "Bearer tok"); r.status != 200 {
		t.Fatalf("another /64: %d", r.status)
	}

	// Bounded memory: many addresses, at most authFailureAddrs remembered.
	for i := range 3 * authFailureAddrs {
		lim.fail(addrKey(fmt.Sprintf("10.%d.%d.%d:1", i>>16, (i>>8)&255, i&255)))
	}
	if n := len(lim.addrs); n != authFailureAddrs || lim.lru.Len() != n {
		t.Fatalf("%d addresses remembered (%d in the list)", n, lim.lru.Len())
	}
}
