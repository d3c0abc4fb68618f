package spreadsheet

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
)

// anchorShapes are the workloads of the anchor benchmarks: cells written
// row-major into a rows x cols block.
var anchorShapes = []struct{ cells, rows, cols int }{
	{1000, 100, 10},
	{4000, 100, 40},
	{16000, 1000, 16},
	{40000, 1000, 40},
}

// anchorWrite builds fresh memory stores, reference workers, a host and a
// worker engine, writes every cell with value row+col and no format
// (snapshot interval 100) and waits until every requested snapshot has
// completed.
func anchorWrite(b *testing.B, rows, cols int) *rig {
	ctx := context.Background()
	r := newRig(b, Options{SnapshotInterval: 100})
	for row := range rows {
		for col := range cols {
			if _, err := r.hostE.SetCell(ctx, uint32(row), uint32(col), cell.Cell{Value: num(float64(row + col))}); err != nil {
				b.Fatal(err)
			}
		}
	}
	r.wait(b)
	return r
}

// BenchmarkAnchorWrite reports, besides ns/op, the CPU time of the whole
// process per op (host and worker; on a shared machine it varies less
// than the wall time), the allocations per written cell (everything the
// op allocates, the memory log and blob store included, divided by the
// cells written), the snapshots completed and the tiles encoded and
// copied per op.
func BenchmarkAnchorWrite(b *testing.B) {
	for _, s := range anchorShapes {
		b.Run(fmt.Sprintf("cells=%d", s.cells), func(b *testing.B) {
			b.ReportAllocs()
			var snaps, enc, cp int64
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu := cpuTime()
			for b.Loop() {
				r := anchorWrite(b, s.rows, s.cols)
				st := r.worker.Stats()
				snaps += st.SnapshotsWritten
				enc += st.TilesEncoded
				cp += st.TilesCopied
			}
			reportCPU(b, cpu)
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*s.cells), "allocs/cell")
			b.ReportMetric(float64(snaps)/float64(b.N), "snapshots/op")
			b.ReportMetric(float64(enc)/float64(b.N), "tilesEncoded/op")
			b.ReportMetric(float64(cp)/float64(b.N), "tilesCopied/op")
		})
	}
}

// BenchmarkAnchorRead: a fresh engine on the stores left by the write
// loads the newest snapshot plus the tail and reads every cell.
func BenchmarkAnchorRead(b *testing.B) {
	ctx := context.Background()
	for _, s := range anchorShapes {
		b.Run(fmt.Sprintf("cells=%d", s.cells), func(b *testing.B) {
			r := anchorWrite(b, s.rows, s.cols)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e := r.fresh(b)
				n := 0
				for row := range s.rows {
					for col := range s.cols {
						c, err := e.Cell(ctx, uint32(row), uint32(col))
						if err != nil || c.Value.NumberVal() != float64(row+col) {
							b.Fatalf("%s = %v, %v", a1.Ref(uint32(row), uint32(col)), c, err)
						}
						n++
					}
				}
				if n != s.cells {
					b.Fatal(n)
				}
			}
		})
	}
}
