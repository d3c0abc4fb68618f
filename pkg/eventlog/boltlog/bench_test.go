package boltlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// benchStore opens a store for a benchmark. BOLTLOG_BENCH_DIR puts the
// file on another disk than the temp dir (fsync cost is the disk's).
func benchStore(b *testing.B) *Store {
	dir := os.Getenv("BOLTLOG_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		var err error
		if dir, err = os.MkdirTemp(dir, "boltlog-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	s, err := Open(filepath.Join(dir, "bench.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkAppend measures acknowledged, fsync'd appends with 1 and 16
// concurrent clients, each appending to its own sheet: the target
// is >= 1000 appends/s aggregate at 16 clients with p99 <= 20 ms. It
// reports appends/s, the p50 and p99 latency of one append, and how many
// appends shared each commit (each commit is one fsync'd transaction).
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 4000x ./pkg/eventlog/boltlog/
func BenchmarkAppend(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := benchStore(b)
			body := []byte(`{"type":"SetCellValueAndFormat","row":12,"column":3,"value":"a cell value of typical size","format":""}`)
			logs := make([]eventlog.EventLog, clients)
			for i := range logs {
				var err error
				if logs[i], err = s.Log(fmt.Sprintf("sheet-%02d", i)); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([][]time.Duration, clients)
			var commits []time.Duration // only the committer goroutine appends
			s.c.onCommit = func(_ int, d time.Duration) { commits = append(commits, d) }
			claimed0, batches0 := s.c.claimed.Load(), s.c.batches.Load()
			b.ResetTimer()
			began := time.Now()
			var wg sync.WaitGroup
			for c := range clients {
				n := b.N / clients
				if c < b.N%clients {
					n++
				}
				lat[c] = make([]time.Duration, 0, n)
				wg.Go(func() {
					ctx := context.Background()
					for id := range n {
						t0 := time.Now()
						if _, err := logs[c].AddEntry(ctx, eventlog.SequenceID(id), eventlog.Entry{Body: body}, nil); err != nil {
							b.Error(err)
							return
						}
						lat[c] = append(lat[c], time.Since(t0))
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(began)
			b.StopTimer()
			all := slices.Concat(lat...)
			if len(all) == 0 {
				return
			}
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "appends/s")
			b.ReportMetric(percentileMs(all, 0.50), "p50-ms")
			b.ReportMetric(percentileMs(all, 0.99), "p99-ms")
			// The commit's own latency (write + 2 fdatasyncs) separates
			// the disk's tail from queueing in the store.
			_ = s.Close() // stops the committer: commits is ours now
			b.ReportMetric(percentileMs(commits, 0.99), "commit-p99-ms")
			if batches := s.c.batches.Load() - batches0; batches > 0 {
				b.ReportMetric(float64(s.c.claimed.Load()-claimed0)/float64(batches), "appends/commit")
			}
		})
	}
}

// BenchmarkAppendBatch measures fsync'd batch appends (AddEntries) of 1,
// 10 and 99 cell entries from one client to one sheet: each batch is one
// transaction and one fsync, so entries/s grows with the batch size until
// writing the pages, not the fsync, is what costs. It reports entries/s
// and the p50 and p99 latency of one batch.
//
//	go test -run '^$' -bench BenchmarkAppendBatch -benchtime 500x ./pkg/eventlog/boltlog/
func BenchmarkAppendBatch(b *testing.B) {
	for _, n := range []int{1, 10, eventlog.MaxBatch} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s := benchStore(b)
			l, err := s.Log("batch")
			if err != nil {
				b.Fatal(err)
			}
			entries := make([]eventlog.Entry, n)
			for i := range entries {
				entries[i].Body = fmt.Appendf(nil, `{"type":"SetCellValueAndFormat","row":%d,"column":%d,"value":"a cell value of typical size","format":""}`, i/10, i%10)
			}
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			began := time.Now()
			for i := range b.N {
				t0 := time.Now()
				if _, err := l.AddEntries(ctx, eventlog.SequenceID(i*n), entries, nil); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(began)
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "entries/s")
			b.ReportMetric(percentileMs(lat, 0.50), "p50-ms")
			b.ReportMetric(percentileMs(lat, 0.99), "p99-ms")
		})
	}
}

func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Millisecond)
}

// BenchmarkQuery1000 reads 1000 entries (one default page) of a sheet
// whose log holds 5000, as `GET log` of 1000 entries does.
func BenchmarkQuery1000(b *testing.B) {
	s := benchStore(b)
	l, err := s.Log("q")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// Fill in one transaction: the size of the log matters here, not
	// how it was written.
	const total = 5000
	sl := l.(*sheetLog)
	err = s.db.Update(func(tx *bolt.Tx) error {
		for id := range eventlog.SequenceID(total) {
			one := batch{recs: [][]byte{encodeRecord(body(int(id)), eventlog.Metadata{})}, mds: []eventlog.Metadata{{}}}
			_, outcome, fatal := sl.appendTx(tx, id, one, nil)
			if err := errors.Join(outcome, fatal); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		from := eventlog.SequenceID(i % (total - 1000))
		p, err := l.Query(ctx, eventlog.FromID(from), eventlog.ToID(from+1000), nil)
		if err != nil || len(p.Entries) != 1000 {
			b.Fatal(len(p.Entries), err)
		}
	}
}
