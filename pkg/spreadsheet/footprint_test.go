package spreadsheet

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/sheetlog/sheetlog/internal/heaptest"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

func TestFootprintConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"slot", unsafe.Sizeof(slot{}), slotBytes},
		{"row", unsafe.Sizeof(tileRow{}), rowBytes},
		{"tile", unsafe.Sizeof(tile{}), tileBytes},
	} {
		if c.got > c.want {
			t.Errorf("a %s is %d bytes; footprint counts %d", c.name, c.got, c.want)
		}
	}
}

// discardWrites is a blob directory that drops what is written to it, so
// that a snapshot's blobs do not count as the engine's heap.
type discardWrites struct{ blobstore.BlobDir }

func (d discardWrites) WriteBlob(context.Context, string, []byte) error { return nil }
func (d discardWrites) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	return discardWrites{sub}, err
}

// TestFootprintMatchesTheHeap: an engine's Footprint is within 25 % of
// the heap it really holds (measured after a GC), for both roles, across
// cells whose memory is mostly structure (small numbers, cells far
// apart) and cells whose memory is mostly strings (long values, long
// formats).
func TestFootprintMatchesTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of megabytes")
	}
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name string
		n    int
		at   func(i int) (row, col uint32)
		cell func(i int) cell.Cell
	}{
		{"small numbers", 40_000, func(i int) (uint32, uint32) { return uint32(i / 40), uint32(i % 40) },
			func(i int) cell.Cell { return cell.Cell{Value: num(float64(i % 100))} }},
		{"short strings", 20_000, func(i int) (uint32, uint32) { return uint32(i % 300), uint32(i / 300) },
			func(i int) cell.Cell { return cell.Cell{Value: cell.StringValue(fmt.Sprintf("item %05d", i))} }},
		{"long strings", 500, func(i int) (uint32, uint32) { return uint32(i), 0 },
			func(i int) cell.Cell { return cell.Cell{Value: cell.StringValue(long(32 << 10))} }},
		{"long formats", 500, func(i int) (uint32, uint32) { return uint32(i), 1 },
			func(i int) cell.Cell { return cell.Cell{Value: num(1)}.WithFormat(long(60_000)) }},
		{"one cell per tile", 5_000, func(i int) (uint32, uint32) { return uint32(i%100) * 100, uint32(i/100) * 100 },
			func(i int) cell.Cell { return cell.Cell{Value: cell.BoolValue(true)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			log := logmem.New(logmem.Options{})
			for i := range tc.n {
				row, col := tc.at(i)
				body := cell.Entry{Row: row, Column: col, Cell: tc.cell(i)}.AppendJSON(nil)
				ent := eventlog.Entry{Body: body}
				if i == tc.n-1 {
					ent.Pending = eventlog.WorkflowSnapshot
				}
				if _, err := log.AddEntry(ctx, eventlog.SequenceID(i), ent, nil); err != nil {
					t.Fatal(err)
				}
			}
			root, _ := blobmem.New(blobmem.Options{}).Sheet("s1")
			for _, role := range []string{"host", "worker"} {
				e, err := New("s1", log, discardWrites{root}, nil, Options{})
				if err != nil {
					t.Fatal(err)
				}
				before := heaptest.Live()
				if role == "host" {
					err = e.Load(ctx)
				} else {
					err = e.RunSnapshot(ctx, eventlog.SequenceID(tc.n-1))
				}
				if err != nil {
					t.Fatal(err)
				}
				grew := heaptest.Live() - before
				got := int64(e.Footprint())
				runtime.KeepAlive(e)
				t.Logf("%s: footprint %d bytes, heap grew %d bytes (%.0f%%)", role, got, grew, 100*float64(got)/float64(grew))
				if got < grew*3/4 || got > grew*5/4 {
					t.Errorf("%s: footprint %d bytes, but the heap grew %d bytes", role, got, grew)
				}
			}
		})
	}
}
