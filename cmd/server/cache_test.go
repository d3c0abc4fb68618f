package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/heaptest"
)

// listenWriter is the server's stderr: it finds the address the server
// listens on and keeps nothing else, so the log does not grow the heap.
type listenWriter struct {
	mu  sync.Mutex
	buf []byte
	url chan string
}

func (w *listenWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.url == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		line, rest, ok := bytes.Cut(w.buf, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		w.buf = rest
		var rec struct{ Msg, URL string }
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "sheetlog server listening" {
			w.url <- rec.URL
			w.url, w.buf = nil, nil
			return len(p), nil
		}
	}
}

// TestCacheMBBoundsTheLiveHeap runs the server in this process (run, as
// main calls it) with -cache-mb 16 and writes 60 sheets of cells with
// 60,000-character formats, so that host and worker engines of every
// sheet pass through the caches: the live heap then grows by about the
// bound, not by the 150 MB the sheets hold.
func TestCacheMBBoundsTheLiveHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 100 MB through the server")
	}
	const (
		sheets   = 60
		perSheet = 24 // snapshots at 10 and 20
		cacheMB  = 16
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The writer drops its channel once it has sent the URL: receive from
	// a copy, not from the field it writes.
	urlc := make(chan string, 1)
	w := &listenWriter{url: urlc}
	done := make(chan error, 1)
	args := []string{"-addr", "127.0.0.1:0", "-data", t.TempDir(), "-log-format", "json", "-log-level", "warn",
		"-cache-mb", strconv.Itoa(cacheMB), "-snapshot-interval", "10", "-workers", "2"}
	go func() { done <- run(ctx, args, func(string) string { return "" }, w) }()
	p := &proc{}
	select {
	case p.url = <-urlc:
	case err := <-done:
		t.Fatalf("the server stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start")
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	before := heaptest.Live()

	format := strings.Repeat("0.00;", 12_000) // 60,000 characters
	var wg sync.WaitGroup
	errc := make(chan error, sheets)
	for c := range 4 {
		wg.Go(func() {
			for sh := c; sh < sheets; sh += 4 {
				sheet := fmt.Sprintf("wide-%02d", sh)
				for i := range perSheet {
					body := map[string]any{"sequenceId": strconv.Itoa(i), "entry": map[string]any{
						"type": "SetCellValueAndFormat", "row": i, "column": 0, "value": i, "format": format}}
					if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &map[string]any{}); err != nil {
						errc <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// Every snapshot completes (the worker engines pass through their
	// cache too), then every sheet is read once more.
	deadline := time.Now().Add(2 * time.Minute)
	for sh := range sheets {
		sheet := fmt.Sprintf("wide-%02d", sh)
		for {
			var st status
			if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet, nil, &st); err != nil {
				t.Fatal(err)
			}
			if len(st.Pending) == 0 && st.LastSnapshot != nil && st.LastSnapshot.SequenceID == "20" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sheet %s: snapshots still pending: %+v", sheet, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	grew := heaptest.Live() - before
	t.Logf("live heap grew by %.1f MiB with -cache-mb %d (the sheets hold %.0f MiB of formats per role)",
		float64(grew)/(1<<20), cacheMB, float64(sheets*perSheet*len(format))/(1<<20))
	// The engines may hold up to the bound; the rest of the server
	// (connections, the log's and the pool's bookkeeping) a few MiB.
	if limit := int64(cacheMB)<<20*5/4 + 8<<20; grew > limit {
		t.Fatalf("live heap grew by %d bytes, more than %d with -cache-mb %d", grew, limit, cacheMB)
	}
}
