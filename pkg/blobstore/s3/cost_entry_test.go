// Without the race detector only: with it, the 1,000-tile sheets take a
// minute and a half. make test runs it (test-lifecycle), and make
// bench-s3 and bench-aws print its table.

//go:build !race

package s3blob

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/pkg/cell"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// maxRequestsPerEntry is the goal of issue 11: S3 requests per appended
// entry, amortised over snapshots and their retirement.
const maxRequestsPerEntry = 2.0

// TestCostS3PerEntry measures what the blob store costs per appended
// entry, all included, on sheets of 10, 100 and 1,000 non-empty tiles
// (100 x 100 cells each, as the engine writes by default): the sheet is
// filled (one cell per tile), then edited at random inside its tiles for
// three snapshot intervals (max(100, 2T) entries each, cadence.go), a
// second per entry on the engine's clock. Each
// snapshot is run by a worker engine and followed by its retention pass
// (K = 2, G = 1 minute, so every snapshot is retired in its turn); the
// requests counted are every request of that phase. A warm worker built
// the previous snapshot itself (an engine kept in a Lambda's cache); a
// cold one is a new engine every time (a new Lambda instance), which
// reads the previous snapshot back first.
func TestCostS3PerEntry(t *testing.T) {
	tab := &awscost.Table{Title: fmt.Sprintf("S3: requests per appended entry, amortised over snapshots and retention (goal <= %g)", maxRequestsPerEntry)}
	for _, tiles := range []int{10, 100, 1000} {
		for _, cold := range []bool{false, true} {
			u, entries, snaps := measurePerEntry(t, tiles, cold)
			worker := "warm"
			if cold {
				worker = "cold"
			}
			per := float64(u.Total()) / float64(entries)
			name := fmt.Sprintf("%d tiles, %s worker", tiles, worker)
			tab.Add(awscost.Row{Name: name, Usage: u, Writes: u.Of("PutObject", "CopyObject", "DeleteObject", "DeleteObjects"),
				Note: fmt.Sprintf("%.2f per entry (%d entries, %d snapshots)", per, entries, snaps)})
			if per > maxRequestsPerEntry {
				t.Errorf("%s: %.2f S3 requests per entry, goal %g", name, per, maxRequestsPerEntry)
			}
		}
	}
	var out strings.Builder
	tab.Print(&out)
	t.Log("\n" + out.String())
}

func measurePerEntry(t *testing.T, tiles int, cold bool) (u awscost.Usage, entries, snaps int) {
	ctx := context.Background()
	c := newRequestCounter()
	cfg, bucket := gofakes3Bucket(t)
	s := storeOn(t, cfg, bucket, Options{PageSize: DefaultPageSize, ClientOptions: []func(*s3.Options){c.clientOption}})
	root := sheet(t, s, "cost")
	log := logmem.New(logmem.Options{})
	// The engine's clock starts at the store's and runs ahead of it: a
	// cold worker learns completion times from the store's clock.
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	opts := spreadsheet.Options{
		Retain: 2, RetireGrace: time.Minute, Now: clock,
		// The delayed pass of a deployment finds nothing more to do here:
		// every snapshot's successor is past its grace by the next one.
		RetireLater: func(context.Context, string, time.Time) {},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	engine := func() *spreadsheet.Engine {
		e, err := spreadsheet.New("cost", log, root, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	host, warm := engine(), engine()
	rng := rand.New(rand.NewPCG(uint64(tiles), 1))
	side := 1
	for side*side < tiles {
		side++
	}
	set := func(row, col uint32) (requested bool) {
		t.Helper()
		next, err := host.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := host.Append(ctx, next, cell.Entry{Row: row, Column: col, Cell: cell.Cell{Value: cell.StringValue(fmt.Sprint(rng.IntN(1000)))}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tick()
		if res.SnapshotRequested {
			w := warm
			if cold {
				w = engine()
			}
			if err := w.RunSnapshot(ctx, res.SequenceID); err != nil {
				t.Fatal(err)
			}
			snaps++
		}
		return res.SnapshotRequested
	}
	// Fill: one cell in each of the tiles, laid out in a square.
	for i := range tiles {
		set(uint32(i/side*100), uint32(i%side*100))
	}
	interval := max(spreadsheet.DefaultSnapshotInterval, 2*tiles)
	// Edit up to a snapshot, so that the measure starts right after one.
	for !set(cellIn(rng, tiles, side)) {
	}
	c.take()
	snaps = 0
	for entries = 0; entries < 3*interval; entries++ {
		set(cellIn(rng, tiles, side))
	}
	return c.takeUsage(), entries, snaps
}

// cellIn is a random cell inside one of the sheet's tiles.
func cellIn(rng *rand.Rand, tiles, side int) (row, col uint32) {
	i := rng.IntN(tiles)
	return uint32(i/side*100 + rng.IntN(100)), uint32(i%side*100 + rng.IntN(100))
}
