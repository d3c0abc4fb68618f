package s3blob

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/internal/awscost"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// TestCostS3EngineSnapshot measures the S3 requests of one snapshot
// written by the real engine on this store: a 100-cell change, all in one
// tile, of a sheet with 10 non-empty tiles. A warm worker (it wrote the
// previous snapshot) encodes the changed tile, copies the 9 others
// server-side and writes the index; a cold one (a new Lambda instance)
// first reads the previous snapshot back.
func TestCostS3EngineSnapshot(t *testing.T) {
	ctx := context.Background()
	c := newRequestCounter()
	cfg, bucket := gofakes3Bucket(t)
	s := storeOn(t, cfg, bucket, Options{PageSize: DefaultPageSize, ClientOptions: []func(*s3.Options){c.clientOption}})
	root := sheet(t, s, "engine")
	log := logmem.New(logmem.Options{})
	opts := spreadsheet.Options{SnapshotInterval: 100, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	host, err := spreadsheet.New("engine", log, root, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	warm, err := spreadsheet.New("engine", log, root, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	set := func(row, col uint32, v float64) {
		t.Helper()
		n, err := cell.NumberValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := host.SetCell(ctx, row, col, cell.Cell{Value: n}); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func(e *spreadsheet.Engine, at eventlog.SequenceID) awscost.Usage {
		t.Helper()
		c.take()
		if err := e.RunSnapshot(ctx, at); err != nil {
			t.Fatal(err)
		}
		return c.takeUsage()
	}
	// Entries 0-99: one cell in each of 10 tiles (100x100), then 90 more
	// in tile 0. Entry 100 requests the snapshot of 0-99.
	for i := range 10 {
		set(uint32(i*100), 0, float64(i))
	}
	for i := range 90 {
		set(uint32(i/10), uint32(1+i%10), float64(i))
	}
	set(50, 50, 1)
	first := snapshot(warm, 100)
	if got := first.Of("PutObject"); got != 11 {
		t.Fatalf("first snapshot: %d puts (%s), want 10 tiles and the index", got, usageString(first))
	}
	// Entries 100-199: a 100-cell change inside tile 0; entry 200 requests
	// the snapshot.
	for i := range 99 {
		set(uint32(10+i/10), uint32(i%10), float64(i))
	}
	set(60, 60, 2)
	cold, err := spreadsheet.New("engine", log, root, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	warmUse := snapshot(warm, 200)
	// The cold worker builds the next one (300) from snapshot 200, over
	// another 100-cell change in tile 0.
	for i := range 99 {
		set(uint32(20+i/10), uint32(i%10), float64(i))
	}
	set(70, 70, 3)
	coldUse := snapshot(cold, 300)

	tab := &awscost.Table{Title: "S3: one engine snapshot, 100-cell change in 1 of 10 tiles (spreadsheet.RunSnapshot on this store)"}
	for _, r := range []struct {
		name string
		u    awscost.Usage
		want string
		note string
	}{
		{"snapshot, warm worker", warmUse, "CopyObject=9 GetObject=0 PutObject=2",
			"encode 1 tile, copy 9 server-side, write the index"},
		{"snapshot, cold worker", coldUse, "CopyObject=9 GetObject=11 PutObject=2",
			"read the previous index and 10 tiles first"},
	} {
		got := strings.Join([]string{kv("CopyObject", r.u), kv("GetObject", r.u), kv("PutObject", r.u)}, " ")
		if got != r.want {
			t.Errorf("%s: %s (all: %s), want %s", r.name, got, usageString(r.u), r.want)
		}
		tab.Add(awscost.Row{Name: r.name, Usage: r.u, Writes: r.u.Of("PutObject", "CopyObject"), Note: r.note})
	}
	var out strings.Builder
	tab.Print(&out)
	t.Log("\n" + out.String())
}

func kv(op string, u awscost.Usage) string { return op + "=" + strconv.Itoa(u.Requests[op]) }
