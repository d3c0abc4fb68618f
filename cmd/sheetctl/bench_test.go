package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkImport is `make bench-import`: sheetctl import of a CSV of
// 10,000 rows × 10 columns (100,000 cells: numbers, text, booleans) into
// a fresh cmd/server built from this tree, with its defaults (fsync on,
// a snapshot every 100 entries, snapshot workers running). It reports
// the wall time, cells/s, and the HTTP requests the server logged (all of
// them, and the appends). SHEETLOG_BENCH_SERVER_ARGS adds server flags.
func BenchmarkImport(b *testing.B) {
	dir := b.TempDir()
	server := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", server, "../server").CombinedOutput(); err != nil {
		b.Fatalf("go build ../server: %v\n%s", err, out)
	}
	csvPath := filepath.Join(dir, "in.csv")
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for r := range 10_000 {
		rec := make([]string, 10)
		for c := range rec {
			switch c % 4 {
			case 0:
				rec[c] = fmt.Sprint(r*10 + c)
			case 1:
				rec[c] = fmt.Sprintf("row %d, col %d", r, c)
			case 2:
				rec[c] = fmt.Sprintf("%d.%d", r, c+1)
			default:
				rec[c] = []string{"TRUE", "FALSE"}[r%2]
			}
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := os.WriteFile(csvPath, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	var wall time.Duration
	var requests, posts int
	for i := range b.N {
		b.StopTimer()
		srv := startBenchServer(b, server, filepath.Join(dir, fmt.Sprint("data", i)))
		b.StartTimer()
		start := time.Now()
		var out, errb bytes.Buffer
		code := runEnv(context.Background(), []string{"import", "--url", srv.url, "bench", csvPath}, nil, &out, &errb, func(string) string { return "" })
		wall += time.Since(start)
		b.StopTimer()
		if code != 0 {
			b.Fatalf("import: exit %d: %s", code, errb.String())
		}
		r, p := srv.stop(b)
		requests += r
		posts += p
		b.Log(strings.TrimSpace(errb.String()))
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(wall.Seconds()/n, "s/import")
	b.ReportMetric(100_000*n/wall.Seconds(), "cells/s")
	b.ReportMetric(float64(requests)/n, "requests/import")
	b.ReportMetric(float64(posts)/n, "appends/import")
}

type benchServer struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func startBenchServer(b *testing.B, bin, data string) *benchServer {
	args := []string{"-addr", "127.0.0.1:0", "-data", data, "-log-format", "json"}
	args = append(args, strings.Fields(os.Getenv("SHEETLOG_BENCH_SERVER_ARGS"))...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &benchServer{cmd: cmd, done: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct{ Msg, URL string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "sheetlog server listening" {
				urlc <- rec.URL
			}
			s.mu.Lock()
			s.logs.Write(sc.Bytes())
			s.logs.WriteByte('\n')
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case s.url = <-urlc:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		b.Fatal("the server did not start")
	}
	return s
}

// stop stops the server (SIGINT) and counts the requests it logged.
func (s *benchServer) stop(b *testing.B) (requests, posts int) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	<-s.done
	_ = s.cmd.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := bufio.NewScanner(&s.logs)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Msg, Method, Route string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "request" {
			requests++
			if rec.Method == "POST" {
				posts++
			}
		}
	}
	return requests, posts
}
