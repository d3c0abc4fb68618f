package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

func TestRetentionFlags(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig(nil, none, io.Discard)
	if err != nil || c.retention != (retention{retain: 2, grace: 10 * time.Minute}) {
		t.Fatalf("defaults: %+v %v", c.retention, err)
	}
	env := map[string]string{"SHEETLOG_SNAPSHOT_RETAIN": "3", "SHEETLOG_SNAPSHOT_GRACE": "90s", "SHEETLOG_TRUNCATE_LOG": "true"}
	c, err = parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.retention != (retention{retain: 3, grace: 90 * time.Second, truncateLog: true}) {
		t.Fatalf("env: %+v %v", c.retention, err)
	}
	c, err = parseConfig([]string{"-snapshot-retain", "1", "-snapshot-grace", "0", "-truncate-log=false"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.retention != (retention{retain: 1}) {
		t.Fatalf("flags over env: %+v %v", c.retention, err)
	}
	var o spreadsheet.Options
	c.retention.apply(&o)
	if o.Retain != 1 || o.RetireGrace != spreadsheet.NoGrace || o.TruncateLog {
		t.Fatalf("engine options %+v", o)
	}
	c, err = parseConfig([]string{"-snapshot-retain", "0"}, none, io.Discard)
	o = spreadsheet.Options{}
	c.retention.apply(&o)
	if err != nil || o.Retain != spreadsheet.RetainAll {
		t.Fatalf("-snapshot-retain 0: %+v %v", o, err)
	}
	for _, args := range [][]string{
		{"-snapshot-retain", "-1"}, {"-snapshot-retain", "x"}, {"-snapshot-grace", "-1s"}, {"-snapshot-grace", "soon"},
		{"-truncate-log", "maybe"}, {"-snapshot-retain", "0", "-truncate-log"},
	} {
		if _, err := parseConfig(args, none, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// spreadModel is what a client wrote to a sheet whose cells spread over
// 30 tiles.
type spreadModel struct {
	next  int
	cells map[string]float64
	acked []logEntry
}

func spreadCell(i int) (row, col int) { return (i * 101) % 3000, i % 7 }

func appendSpread(t *testing.T, ctx context.Context, p *proc, sheet string, m *spreadModel, n int) {
	t.Helper()
	for range n {
		row, col := spreadCell(m.next)
		v := float64(m.next)
		body := map[string]any{
			"sequenceId": strconv.Itoa(m.next),
			"entry":      map[string]any{"type": "SetCellValueAndFormat", "row": row, "column": col, "value": v},
		}
		if _, err := p.do(ctx, "POST", "/v1/sheets/"+sheet+"/log", body, nil); err != nil {
			t.Fatal(err)
		}
		m.cells[a1.Ref(uint32(row), uint32(col))] = v
		m.acked = append(m.acked, logEntry{Type: "SetCellValueAndFormat", Row: row, Column: col, Value: v})
		m.next++
	}
}

type blobListing struct {
	Blobs []string `json:"blobs"`
	Dirs  []string `json:"dirs"`
}

// checkNothingNeededIsGone: the log holds what was acknowledged from its
// start on, every snapshot an entry names is whole (its index and every
// tile it lists read back, and the tiles hold exactly the cells as of
// its entry), and a reader loading the sheet afresh has every cell.
func checkNothingNeededIsGone(t *testing.T, ctx context.Context, p *proc, sheet string, m *spreadModel) []int {
	t.Helper()
	var (
		entries []logEntry
		first   = -1
		start   = "start"
	)
	for {
		var page logPage
		if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/log?start="+start, nil, &page); err != nil {
			t.Fatal(err)
		}
		if first < 0 {
			first, _ = strconv.Atoi(page.StartSequenceID)
		}
		entries = append(entries, page.Entries...)
		if page.IsComplete {
			break
		}
		start = page.EndSequenceID
	}
	if first+len(entries) != len(m.acked) {
		t.Fatalf("the log holds [%d, %d), %d entries acknowledged", first, first+len(entries), len(m.acked))
	}
	var named []int
	newest := -1
	for i, e := range entries {
		if e.Snapshot != "" {
			newest = first + i
		}
	}
	for i, e := range entries {
		a := m.acked[first+i]
		if e.Row != a.Row || e.Column != a.Column || e.Value != a.Value {
			t.Fatalf("entry %d = %+v, acknowledged %+v", first+i, e, a)
		}
		if e.Snapshot == "" {
			continue
		}
		s := first + i
		named = append(named, s)
		// Only the newest snapshot must stay: an older one is retired
		// a grace (100 ms here) after a newer one completed, which may
		// be while this reads it. Its blobs that are there must be
		// right, but some may be gone.
		retiring := func(code int) bool { return s < newest && code == http.StatusNotFound }
		var dir, tiles blobListing
		if code, err := p.do(ctx, "GET", fmt.Sprintf("/v1/sheets/%s/blobs/%d/", sheet, s), nil, &dir); retiring(code) {
			continue
		} else if err != nil {
			t.Fatalf("snapshot %d is named by its entry: %v", s, err)
		}
		if s == newest && (fmt.Sprint(dir.Blobs) != "[index]" || fmt.Sprint(dir.Dirs) != "[tiles]") {
			t.Fatalf("snapshot %d is named by its entry and holds %+v", s, dir)
		}
		if code, err := p.do(ctx, "GET", fmt.Sprintf("/v1/sheets/%s/blobs/%d/tiles/", sheet, s), nil, &tiles); retiring(code) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{}
		for _, a := range m.acked[:s] {
			want[a1.Ref(uint32(a.Row), uint32(a.Column))] = a.Value.(float64)
		}
		got := 0
		for _, name := range tiles.Blobs {
			var origin [4]int
			if _, err := fmt.Sscanf(name, "%d-%d-%d-%d", &origin[0], &origin[1], &origin[2], &origin[3]); err != nil {
				t.Fatalf("snapshot %d: tile %q", s, name)
			}
			var cells map[string]struct{ Value float64 }
			if code, err := p.do(ctx, "GET", fmt.Sprintf("/v1/sheets/%s/blobs/%d/tiles/%s", sheet, s, name), nil, &cells); retiring(code) {
				continue
			} else if err != nil {
				t.Fatalf("snapshot %d: tile %s listed but not readable: %v", s, name, err)
			}
			for ref, c := range cells {
				r, col, err := a1.Parse(ref)
				if err != nil {
					t.Fatal(err)
				}
				abs := a1.Ref(r+uint32(origin[0]), col+uint32(origin[1]))
				if want[abs] != c.Value {
					t.Fatalf("snapshot %d: %s = %v, want %v", s, abs, c.Value, want[abs])
				}
				got++
			}
		}
		if got > len(want) || got < len(want) && s == newest {
			t.Fatalf("snapshot %d holds %d cells, want %d", s, got, len(want))
		}
	}
	// A range reads at most 10,000 cells: 1,000 rows at a time.
	got := map[string]any{}
	for row := 1; row <= 3000; row += 1000 {
		var cells struct {
			EndSequenceID string                    `json:"endSequenceId"`
			Cells         map[string]map[string]any `json:"cells"`
		}
		rng := fmt.Sprintf("A%d:G%d", row, row+999)
		if _, err := p.do(ctx, "GET", "/v1/sheets/"+sheet+"/cells?range="+rng, nil, &cells); err != nil {
			t.Fatal(err)
		}
		if cells.EndSequenceID != strconv.Itoa(m.next) {
			t.Fatalf("cells %s at %s, model at %d", rng, cells.EndSequenceID, m.next)
		}
		for ref, c := range cells.Cells {
			got[ref] = c["value"]
		}
	}
	if len(got) != len(m.cells) {
		t.Fatalf("%d cells read, model %d", len(got), len(m.cells))
	}
	for ref, v := range m.cells {
		if got[ref] != v {
			t.Fatalf("%s = %v, model %v", ref, got[ref], v)
		}
	}
	return named
}

// interruptedPass reports whether the last retention record of a
// server's JSON log is a pass that has started and not finished.
func interruptedPass(log string) bool {
	last := ""
	for _, line := range strings.Split(log, "\n") {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "retention pass") {
			last = rec.Msg
		}
	}
	return last == "retention pass"
}

// TestKillDuringRetirement runs the binary with retention that works all
// the time (K = 1, a grace of 100 ms, the log truncated behind the kept
// snapshot) on a sheet of 30 tiles, and SIGKILLs it at random moments
// while snapshots are built, retired and the log truncated. After every
// restart nothing a reader needs is gone: the log holds every
// acknowledged entry from its start, every snapshot it names is whole
// and right, and a fresh load reads every cell. In the end retention
// settles on the newest snapshot alone.
func TestKillDuringRetirement(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	ctx := context.Background()
	data := t.TempDir()
	args := []string{"-snapshot-interval", "5", "-workers", "2", "-log-level", "debug",
		"-snapshot-retain", "1", "-snapshot-grace", "100ms", "-truncate-log"}
	m := &spreadModel{cells: map[string]float64{}}
	rng := rand.New(rand.NewPCG(7, 7))
	interrupted := 0
	const cycles = 6
	for range cycles {
		p := startServer(t, data, args...)
		checkNothingNeededIsGone(t, ctx, p, "gamma", m)
		appendSpread(t, ctx, p, "gamma", m, 150)
		// Kill as soon as a pass has started (the debug log says so),
		// a moment into it; or after a while without one.
		for deadline := time.Now().Add(2 * time.Second); !interruptedPass(p.log()) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		p.kill(t)
		if interruptedPass(p.log()) {
			interrupted++
		}
	}
	t.Logf("%d of %d kills landed inside a retention pass", interrupted, cycles)

	p := startServer(t, data, args...)
	named := checkNothingNeededIsGone(t, ctx, p, "gamma", m)
	if len(named) == 0 {
		t.Fatal("no snapshot after the run")
	}
	// The restart's own pass (a grace after the start) and the snapshot
	// just written leave the newest alone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var root blobListing
		if _, err := p.do(ctx, "GET", "/v1/sheets/gamma/blobs/", nil, &root); err != nil {
			t.Fatal(err)
		}
		named = checkNothingNeededIsGone(t, ctx, p, "gamma", m)
		if len(root.Dirs) == 1 && len(named) == 1 && root.Dirs[0] == strconv.Itoa(named[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("directories %v, snapshots named %v: retention did not settle\n%s", root.Dirs, named, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
