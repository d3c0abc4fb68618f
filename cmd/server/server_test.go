package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
)

type logEntry struct {
	Type     string `json:"type"`
	Row      int    `json:"row"`
	Column   int    `json:"column"`
	Value    any    `json:"value"`
	Snapshot string `json:"snapshot"`
	Pending  string `json:"pending"`
}

type logPage struct {
	StartSequenceID string     `json:"startSequenceId"`
	EndSequenceID   string     `json:"endSequenceId"`
	IsComplete      bool       `json:"isComplete"`
	Entries         []logEntry `json:"entries"`
}

type status struct {
	EndSequenceID string `json:"endSequenceId"`
	LastSnapshot  *struct {
		SequenceID string `json:"sequenceId"`
	} `json:"lastSnapshot"`
	Pending  []any `json:"pending"`
	RowCount int   `json:"rowCount"`
	ColCount int   `json:"colCount"`
}

// sheetModel is what a client knows it wrote to one sheet.
type sheetModel struct {
	next  int
	cells map[string]float64 // A1 -> value
	acked []logEntry
}

func appendCells(t *testing.T, ctx context.Context, p *proc, sheet string, m *sheetModel, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		row, col := m.next%37, m.next%11
		v := float64(m.next)
		body := map[string]any{
			"sequenceId": strconv.Itoa(m.next),
			"entry":      map[string]any{"type": "SetCellValueAndFormat", "row": row, "column": col, "value": v},
		}
		var reply struct {
			SequenceID string `json:"sequenceId"`
		}
		if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, &reply); err != nil {
			t.Fatal(err)
		}
		if reply.SequenceID != strconv.Itoa(m.next) {
			t.Fatalf("appended at %s, want %d", reply.SequenceID, m.next)
		}
		m.cells[a1.Ref(uint32(row), uint32(col))] = v
		m.acked = append(m.acked, logEntry{Type: "SetCellValueAndFormat", Row: row, Column: col, Value: v})
		m.next++
	}
}

// readLog reads a sheet's whole log, page by page.
func readLog(t *testing.T, ctx context.Context, p *proc, sheet string) []logEntry {
	t.Helper()
	var all []logEntry
	start := "start"
	for {
		var page logPage
		if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/log?start="+start, nil, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if page.IsComplete {
			return all
		}
		start = page.EndSequenceID
	}
}

// waitNoPending polls the sheet's status until no workflow is pending.
func waitNoPending(t *testing.T, ctx context.Context, p *proc, sheet string) status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st status
		if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet, nil, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Pending) == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still pending: %+v\n%s", sheet, st.Pending, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func snapshotIDs(entries []logEntry) (done []int, pending []int) {
	for i, e := range entries {
		if e.Snapshot != "" {
			done = append(done, i)
		}
		if e.Pending != "" {
			pending = append(pending, i)
		}
	}
	return done, pending
}

func checkSheet(t *testing.T, ctx context.Context, p *proc, sheet string, m *sheetModel, wantSnapshots []int) {
	t.Helper()
	entries := readLog(t, ctx, p, sheet)
	if len(entries) != len(m.acked) {
		t.Fatalf("%s: %d entries in the log, %d acknowledged", sheet, len(entries), len(m.acked))
	}
	for i, e := range entries {
		a := m.acked[i]
		if e.Row != a.Row || e.Column != a.Column || e.Value != a.Value {
			t.Fatalf("%s: entry %d = %+v, acknowledged %+v", sheet, i, e, a)
		}
	}
	done, pending := snapshotIDs(entries)
	if len(pending) != 0 {
		t.Fatalf("%s: still pending at %v", sheet, pending)
	}
	if wantSnapshots != nil && fmt.Sprint(done) != fmt.Sprint(wantSnapshots) {
		t.Fatalf("%s: snapshots at %v, before the kill at %v", sheet, done, wantSnapshots)
	}
	for _, s := range done {
		var listing struct {
			Blobs []string `json:"blobs"`
			Dirs  []string `json:"dirs"`
		}
		if _, err := p.do(ctx, "GET", fmt.Sprintf("/v1/sheets/%s/blobs/%d/", sheet, s), nil, &listing); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(listing.Blobs) != "[index]" || fmt.Sprint(listing.Dirs) != "[tiles]" {
			t.Fatalf("%s: snapshot %d holds %+v", sheet, s, listing)
		}
	}
	var cells struct {
		EndSequenceID string                    `json:"endSequenceId"`
		Cells         map[string]map[string]any `json:"cells"`
	}
	if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/cells?range=A1:K37", nil, &cells); err != nil {
		t.Fatal(err)
	}
	if cells.EndSequenceID != strconv.Itoa(m.next) || len(cells.Cells) != len(m.cells) {
		t.Fatalf("%s: cells at %s hold %d cells, model %d at %d", sheet, cells.EndSequenceID, len(cells.Cells), len(m.cells), m.next)
	}
	for ref, v := range m.cells {
		if got := cells.Cells[ref]["value"]; got != v {
			t.Fatalf("%s: %s = %v, model %v", sheet, ref, got, v)
		}
	}
}

// TestKillAndRestart drives the real binary: 250 entries to each of two
// sheets over HTTP, every requested snapshot completes, SIGKILL, restart,
// and everything acknowledged is there and reads back right. Then a kill
// right after a burst of appends (snapshots in flight) and a restart that
// completes them, and a graceful SIGTERM.
func TestKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	ctx := context.Background()
	data := t.TempDir()
	args := []string{"-snapshot-interval", "10", "-workers", "2"}
	p := startServer(t, data, args...)
	models := map[string]*sheetModel{"alpha": {cells: map[string]float64{}}, "beta": {cells: map[string]float64{}}}
	for _, sheet := range []string{"alpha", "beta"} {
		appendCells(t, ctx, p, sheet, models[sheet], 250)
	}
	snaps := map[string][]int{}
	for sheet := range models {
		st := waitNoPending(t, ctx, p, sheet)
		if st.LastSnapshot == nil {
			t.Fatalf("%s: no snapshot after 250 entries with interval 10", sheet)
		}
		snaps[sheet], _ = snapshotIDs(readLog(t, ctx, p, sheet))
		if len(snaps[sheet]) < 2 {
			t.Fatalf("%s: snapshots %v", sheet, snaps[sheet])
		}
		checkSheet(t, ctx, p, sheet, models[sheet], snaps[sheet])
	}
	p.kill(t)

	p = startServer(t, data, args...)
	for sheet, m := range models {
		checkSheet(t, ctx, p, sheet, m, snaps[sheet])
	}

	// Kill while snapshots are requested and running; the restart's scan
	// completes them.
	appendCells(t, ctx, p, "alpha", models["alpha"], 120)
	p.kill(t)
	p = startServer(t, data, args...)
	waitNoPending(t, ctx, p, "alpha")
	checkSheet(t, ctx, p, "alpha", models["alpha"], nil)
	done, _ := snapshotIDs(readLog(t, ctx, p, "alpha"))
	before := snaps["alpha"]
	if last := done[len(done)-1]; last <= before[len(before)-1] {
		t.Fatalf("alpha: no snapshot after the restart: newest at %d, as before the burst", last)
	}

	// A graceful stop exits cleanly.
	if err := p.stop(t); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.log())
	}
}
