package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

func TestHealth(t *testing.T) {
	needDeployment(t)
	var h struct {
		Status string `json:"status"`
	}
	call(t, http.MethodGet, "/healthz", nil).expect(t, http.StatusOK, "GET /healthz").decode(t, &h)
	if h.Status != "ok" {
		t.Fatalf("healthz says %q", h.Status)
	}
}

// TestSheets appends cells to several sheets at once through HTTP, waits
// for every snapshot the server requested, and checks the log, the cells
// and every snapshot's blobs against a model.
func TestSheets(t *testing.T) {
	needDeployment(t)
	t.Parallel()
	runs := make([]*sheetRun, cfg.sheets)
	for i := range runs {
		runs[i] = newSheetRun(fmt.Sprintf("e2e-%s-%d", cfg.runID, i), generate(uint64(i)+1, cfg.cells))
	}
	start := time.Now()
	// The sheets are written at once (so the stream interleaves them and
	// batches mix sheets), each by its own goroutine.
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		t.Cleanup(r.stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = r.appendAll(); errs[i] == nil {
				errs[i] = r.waitWorkflows()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("appended %d cells to each of %d sheets and saw every workflow complete in %.1f s",
		cfg.cells, len(runs), time.Since(start).Seconds())
	for _, r := range runs {
		t.Run(r.sheet, func(t *testing.T) {
			r.checkLog(t)
			r.checkStatus(t)
			r.checkCells(t)
			r.checkSnapshots(t)
		})
	}
	var lat []float64
	for _, r := range runs {
		lat = append(lat, r.latencies()...)
	}
	logLatency(t, "append to snapshot visible (TestSheets)", lat)
}

// TestWorkflowSurvivesFaults writes to a sheet whose workflows the
// harness's workflow Lambda fails on purpose a few times: the stream
// mapping retries the reported batch item failures and the snapshot
// completes, with nothing dead-lettered.
func TestWorkflowSurvivesFaults(t *testing.T) {
	hc := needHarness(t, "make the workflow Lambda fail on purpose")
	t.Parallel()
	if hc.FaultFailFirst <= 0 || hc.FaultFailFirst > hc.MaxRetries {
		skipOutsideCI(t, fmt.Sprintf("the harness injects %d faults with %d retries: nothing to test", hc.FaultFailFirst, hc.MaxRetries))
	}
	r := newSheetRun(hc.FaultSheetPrefix+cfg.runID, generate(77, hc.SnapshotInterval+5))
	t.Cleanup(r.stop)
	r.runAndCheck(t)
	var st harnessStats
	control(t, http.MethodGet, "/stats", &st)
	s := st.ESM.Sheets[r.sheet]
	if s.ItemFailures < hc.FaultFailFirst || s.DeadLettered != 0 {
		t.Fatalf("the mapping saw %d item failures and %d dead letters for %s; want >= %d and 0",
			s.ItemFailures, s.DeadLettered, r.sheet, hc.FaultFailFirst)
	}
	t.Logf("%d injected failures retried, snapshot complete", s.ItemFailures)
}

// TestSweeperCompletesLostRecords makes the harness drop every stream
// record of a sheet, as if the stream had lost them: the scheduled sweeper
// finds the entries still pending after its grace period and completes
// them.
func TestSweeperCompletesLostRecords(t *testing.T) {
	hc := needHarness(t, "drop stream records")
	t.Parallel()
	r := newSheetRun("sweep-"+cfg.runID, generate(99, 2*hc.SnapshotInterval+5))
	control(t, http.MethodPost, "/drop?sheet="+r.sheet, nil)
	t.Cleanup(r.stop)
	r.runAndCheck(t)
	var st harnessStats
	control(t, http.MethodGet, "/stats", &st)
	s := st.ESM.Sheets[r.sheet]
	if s.Dropped == 0 || s.Delivered != 0 {
		t.Fatalf("stream records of %s: %d dropped, %d delivered; want some dropped and none delivered", r.sheet, s.Dropped, s.Delivered)
	}
	if st.Sweeps.Ran == 0 {
		t.Fatal("the sweeper ran no workflow, yet the snapshots completed")
	}
	t.Logf("%d stream records dropped; the sweeper completed %d snapshots", s.Dropped, len(r.snapshotIDs()))
	logLatency(t, "append to snapshot visible, lost record (sweeper)", r.latencies())
}

// TestUnknownWorkflowIsDeadLettered writes an entry naming a workflow
// nobody knows straight into the table (the API refuses pending from
// clients): the workflow Lambda reports it as failed, the mapping retries
// it a bounded number of times and then sends the batch's range to the
// dead-letter queue, and the API keeps serving the sheet.
func TestUnknownWorkflowIsDeadLettered(t *testing.T) {
	hc := needHarness(t, "write an entry with an unknown workflow and read the dead-letter queue")
	t.Parallel()
	sheet := "poison-" + cfg.runID
	control(t, http.MethodPost, "/inject?sheet="+sheet+"&seq=0&workflow=no-such-workflow", nil)
	found := deadLetterFor(t, sheet, "0", time.Duration(hc.MaxRetries+2)*5*time.Second+10*time.Second)
	if found.RequestContext.ApproximateInvokeCount != hc.MaxRetries+1 || found.RequestContext.Condition != "RetryAttemptsExhausted" {
		t.Errorf("dead-lettered after %d attempts (%s), want %d (1 + %d retries, RetryAttemptsExhausted)",
			found.RequestContext.ApproximateInvokeCount, found.RequestContext.Condition, hc.MaxRetries+1, hc.MaxRetries)
	}
	entries := readLog(t, sheet, 0, 1)
	if len(entries) != 1 || entries[0].Pending != "no-such-workflow" || entries[0].Snapshot != "" {
		t.Fatalf("entry 0 is %+v; want it still pending no-such-workflow", entries)
	}
	// The sheet still takes appends.
	if _, err := thin(t).Log(sheet).AddEntry(context.Background(), 1, entryOf(genEntry{row: 1, col: 1, value: json.RawMessage("1")}), nil); err != nil {
		t.Fatalf("append after the poisoned entry: %v", err)
	}
	t.Logf("dead-lettered after %d attempts", found.RequestContext.ApproximateInvokeCount)
}

// TestDeadLetterRunbook follows docs/lambda.md's runbook on a workflow
// whose stream deliveries all fail (the harness's workflow function fails
// the first 1 + retries attempts of the dead-letter prefix's sheets):
//
//  1. the dead letter holds what Lambda sends an on-failure destination for
//     a stream, metadata only, no record;
//  2. the sweeper runs the entry anyway: it completes with no help;
//  3. the operator finds the entries from the letter's range, read back
//     from the stream, and checks them through the API;
//  4. a re-drive by hand (those records sent to the workflow function
//     again) is accepted, with no failure.
func TestDeadLetterRunbook(t *testing.T) {
	hc := needHarness(t, "make every stream delivery of a workflow fail and read the dead-letter queue")
	t.Parallel()
	if hc.DeadLetterPrefix == "" {
		t.Fatal("the harness has no dead-letter prefix")
	}
	r := newSheetRun(hc.DeadLetterPrefix+cfg.runID, generate(55, hc.SnapshotInterval+5))
	t.Cleanup(r.stop)
	r.runAndCheck(t) // 2: the snapshot completes, by the sweeper
	snaps := r.snapshotIDs()
	if len(snaps) != 1 {
		t.Fatalf("snapshots requested at %v, want one", snaps)
	}
	seq := strconv.FormatUint(snaps[0], 10)
	d := deadLetterFor(t, r.sheet, seq, time.Duration(hc.MaxRetries+2)*5*time.Second+10*time.Second)

	// 1: metadata only.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(d.raw, &members); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(members))
	if want := []string{"DDBStreamBatchInfo", "requestContext", "responseContext", "timestamp", "version"}; !slices.Equal(keys, want) {
		t.Errorf("dead letter members %v, want %v (no records: Lambda sends none)", keys, want)
	}
	if d.RequestContext.ApproximateInvokeCount != hc.MaxRetries+1 {
		t.Errorf("approximateInvokeCount %d, want %d", d.RequestContext.ApproximateInvokeCount, hc.MaxRetries+1)
	}
	var st harnessStats
	control(t, http.MethodGet, "/stats", &st)
	s := st.ESM.Sheets[r.sheet]
	if s.ItemFailures != hc.MaxRetries+1 || s.DeadLettered == 0 {
		t.Errorf("stream deliveries of %s: %d item failures, %d dead-lettered; want %d and at least 1",
			r.sheet, s.ItemFailures, s.DeadLettered, hc.MaxRetries+1)
	}
	if st.Sweeps.Ran == 0 {
		t.Error("the sweeper ran no workflow, yet every stream delivery failed and the snapshot completed")
	}

	// 3: the entry named by the range is complete (checked through the API).
	e := readLog(t, r.sheet, snaps[0], snaps[0]+1)
	if len(e) != 1 || e[0].Pending != "" || e[0].Snapshot != seq {
		t.Errorf("entry %s of %s after the sweep: %+v, want snapshot %s and nothing pending", seq, r.sheet, e, seq)
	}

	// 4: re-drive the range by hand.
	var res struct {
		Records  int `json:"records"`
		Failures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := controlErr(http.MethodPost, "/redrive", d.Info, &res); err != nil {
		t.Fatalf("re-drive: %v", err)
	}
	if res.Records == 0 || len(res.Failures) != 0 {
		t.Errorf("re-drive: %d records sent, failures %v; want some and none", res.Records, res.Failures)
	}
	t.Logf("dead letter after %d attempts; the sweeper completed the snapshot; a re-drive of %d records from the stream succeeded",
		d.RequestContext.ApproximateInvokeCount, res.Records)
}

func logLatency(t *testing.T, name string, ms []float64) {
	t.Helper()
	if len(ms) == 0 {
		t.Logf("%s: no samples", name)
		return
	}
	s := slices.Clone(ms)
	sort.Float64s(s)
	t.Logf("%s: n=%d p50=%.0f ms max=%.0f ms", name, len(s), s[len(s)/2], s[len(s)-1])
	reportMetric(name, s)
}

// sheetRun is one sheet written by the suite: what was appended and when,
// and what a watcher saw of its workflows.
type sheetRun struct {
	sheet   string
	entries []genEntry

	mu          sync.Mutex
	acked       []time.Time // ack time of each appended id
	checked     uint64      // ids below were looked at by the watcher
	outstanding map[uint64]bool
	everPending map[uint64]bool
	latency     map[uint64]time.Duration
	known       uint64 // newest snapshot seen complete (0: none)
	watchErr    error
	stopWatch   context.CancelFunc
	watchDone   chan struct{}
}

func newSheetRun(sheet string, entries []genEntry) *sheetRun {
	return &sheetRun{sheet: sheet, entries: entries, outstanding: map[uint64]bool{},
		everPending: map[uint64]bool{}, latency: map[uint64]time.Duration{}}
}

// appendAll appends every entry in order at its id, while a watcher
// looks for the workflows the appends request. Each append names the
// newest snapshot the run knows, so its reply reports a newer one as soon
// as a workflow completes (lastSnapshot): that is when the completion
// counts as visible, to within one append.
// runAndCheck appends every edit, waits for the snapshots they ask for,
// and checks the log and the newest snapshot against the model.
func (r *sheetRun) runAndCheck(t *testing.T) {
	t.Helper()
	if err := r.appendAll(); err != nil {
		t.Fatal(err)
	}
	if err := r.waitWorkflows(); err != nil {
		t.Fatal(err)
	}
	r.checkLog(t)
	r.checkSnapshots(t)
}

func (r *sheetRun) appendAll() error { return r.appendFrom(0) }

// appendFrom appends the entries from id from on (those before it are
// appended already), with a watcher.
func (r *sheetRun) appendFrom(from int) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.stopWatch = cancel
	r.watchDone = make(chan struct{})
	go r.watch(ctx)
	c, err := api()
	if err != nil {
		return err
	}
	log := c.Log(r.sheet)
	for i := from; i < len(r.entries); i++ {
		e := r.entries[i]
		r.mu.Lock()
		known := r.known
		r.mu.Unlock()
		ls, err := log.AddEntry(context.Background(), eventlog.SequenceID(i), entryOf(e), eventlog.Known(eventlog.SequenceID(known)))
		if err != nil {
			return fmt.Errorf("append %d to %s: %w", i, r.sheet, err)
		}
		now := time.Now()
		r.mu.Lock()
		r.acked = append(r.acked, now)
		if ls != nil {
			s := uint64(ls.SequenceID)
			if ls.BlobID != strconv.FormatUint(s, 10) || s >= uint64(len(r.acked)) {
				r.mu.Unlock()
				return fmt.Errorf("append %d to %s: lastSnapshot %+v", i, r.sheet, *ls)
			}
			r.completedLocked(s, now)
		}
		r.mu.Unlock()
	}
	return nil
}

// completedLocked records that the workflow at id is complete as of now.
func (r *sheetRun) completedLocked(id uint64, now time.Time) {
	r.everPending[id] = true
	delete(r.outstanding, id)
	if _, ok := r.latency[id]; !ok {
		r.latency[id] = now.Sub(r.acked[id])
	}
	r.known = max(r.known, id)
}

func (r *sheetRun) stop() {
	if r.stopWatch != nil {
		r.stopWatch()
		<-r.watchDone
		r.stopWatch = nil
	}
}

// watch polls the log of the entries appended since it last looked and of
// the workflows still outstanding, every 250 ms. An entry requests a
// workflow when it is appended, so its pending field is there from the
// acknowledgement on, and a workflow is complete when its entry has
// snapshot set and pending cleared: the latency is from the
// acknowledgement to the first append reply or poll that shows the
// completion (an upper bound, to within an append or a poll period).
func (r *sheetRun) watch(ctx context.Context) {
	defer close(r.watchDone)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		hi := uint64(len(r.acked))
		lo := r.checked
		for id := range r.outstanding {
			lo = min(lo, id)
		}
		r.mu.Unlock()
		if lo >= hi {
			continue
		}
		c, err := api()
		var p eventlog.Page
		if err == nil {
			p, err = c.Log(r.sheet).Query(ctx, eventlog.FromID(eventlog.SequenceID(lo)), eventlog.ToID(eventlog.SequenceID(hi)), nil)
		}
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		r.mu.Lock()
		if err != nil {
			r.watchErr = err
			r.mu.Unlock()
			continue
		}
		for i, e := range p.Entries {
			id := lo + uint64(i)
			fresh := id >= r.checked
			switch {
			case e.Pending == "" && e.Snapshot != "" && (fresh || r.outstanding[id]):
				// A snapshot is only ever set by completing a workflow,
				// so an entry first seen complete had one pending too.
				r.completedLocked(id, now)
			case fresh && e.Pending != "" && !r.everPending[id]:
				r.everPending[id] = true
				r.outstanding[id] = true
			}
			if fresh {
				r.checked = id + 1
			}
		}
		r.mu.Unlock()
	}
}

// waitWorkflows waits until the watcher has looked at every entry and
// every workflow it saw is complete.
func (r *sheetRun) waitWorkflows() error {
	deadline := time.Now().Add(cfg.wait)
	for {
		r.mu.Lock()
		done := r.checked == uint64(len(r.acked)) && len(r.outstanding) == 0
		var left []uint64
		for id := range r.outstanding {
			left = append(left, id)
		}
		werr := r.watchErr
		r.mu.Unlock()
		if done {
			r.stop()
			return nil
		}
		if time.Now().After(deadline) {
			slices.Sort(left)
			return fmt.Errorf("workflows of %s still pending after %v at %v (last watch error: %v)", r.sheet, cfg.wait, left, werr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *sheetRun) latencies() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for _, d := range r.latency {
		out = append(out, float64(d)/float64(time.Millisecond))
	}
	return out
}

func (r *sheetRun) snapshotIDs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	for id := range r.everPending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// modelBefore is the state after entries [0, n).
func (r *sheetRun) modelBefore(n uint64) *model {
	m := newModel()
	for _, e := range r.entries[:n] {
		m.apply(e)
	}
	return m
}

// checkLog reads the whole log: every entry is what was appended; no
// entry is still pending; the entries with a snapshot are exactly those
// that requested one (those that retention keeps, and perhaps some it has
// yet to retire, when the deployment's retention is known), each naming
// the snapshot directory of its own id.
func (r *sheetRun) checkLog(t *testing.T) {
	t.Helper()
	n := uint64(len(r.entries))
	got := readLog(t, r.sheet, 0, n)
	if uint64(len(got)) != n {
		t.Fatalf("the log of %s has %d entries, want %d", r.sheet, len(got), n)
	}
	var snaps []uint64
	for i, e := range got {
		want := r.entries[i]
		if e.Type != "SetCellValueAndFormat" || e.Row != want.row || e.Column != want.col ||
			(e.Value == nil) != (want.value == nil) || (e.Value != nil && !sameJSON(*e.Value, want.value)) ||
			(e.Format == nil) != (want.format == nil) || (e.Format != nil && *e.Format != *want.format) {
			t.Fatalf("entry %d of %s is %+v, want %+v", i, r.sheet, e, want.body())
		}
		if e.Pending != "" {
			t.Errorf("entry %d of %s is still pending %q", i, r.sheet, e.Pending)
		}
		if e.Snapshot != "" {
			if e.Snapshot != strconv.Itoa(i) {
				t.Errorf("entry %d of %s names snapshot %q, want %q", i, r.sheet, e.Snapshot, strconv.Itoa(i))
			}
			snaps = append(snaps, uint64(i))
		}
	}
	if want := r.stableSnapshots(); !slices.Equal(snaps, want) && !retiredOnly(snaps, r.snapshotIDs(), want) {
		t.Errorf("entries of %s with a snapshot %v; the watcher saw workflows requested at %v, of which retention keeps %v",
			r.sheet, snaps, r.snapshotIDs(), want)
	}
	if len(snaps) == 0 {
		t.Errorf("%d appends to %s requested no snapshot", n, r.sheet)
	}
}

func (r *sheetRun) checkStatus(t *testing.T) {
	t.Helper()
	st, err := thin(t).Status(context.Background(), r.sheet)
	if err != nil {
		t.Fatalf("status of %s: %v", r.sheet, err)
	}
	n := uint64(len(r.entries))
	m := r.modelBefore(n)
	if uint64(st.End) != n || st.Start != 0 || len(st.Pending) != 0 ||
		int64(st.RowCount) != m.rowCount || int64(st.ColCount) != m.colCount {
		t.Errorf("status of %s: %+v; want start 0, end %d, nothing pending, %d rows, %d cols", r.sheet, st, n, m.rowCount, m.colCount)
	}
	snaps := r.snapshotIDs()
	if len(snaps) > 0 {
		newest := strconv.FormatUint(snaps[len(snaps)-1], 10)
		if st.LastSnapshot == nil || strconv.FormatUint(uint64(st.LastSnapshot.SequenceID), 10) != newest || st.LastSnapshot.BlobID != newest {
			t.Errorf("status of %s names snapshot %+v, want %s", r.sheet, st.LastSnapshot, newest)
		}
	}
}

// checkCells compares GET cells with the model, block by block.
func (r *sheetRun) checkCells(t *testing.T) {
	t.Helper()
	m := r.modelBefore(uint64(len(r.entries)))
	got := map[pos]cellState{}
	for _, b := range []struct{ r0, c0, rows, cols int64 }{
		{0, 0, mainRows, mainCols}, {farRow0, farCol0, farRows, farCols},
	} {
		rng := ref(b.r0, b.c0) + ":" + ref(b.r0+b.rows-1, b.c0+b.cols-1)
		cr, err := thin(t).Cells(context.Background(), r.sheet, a1.Range{Row0: uint32(b.r0), Col0: uint32(b.c0), Row1: uint32(b.r0 + b.rows - 1), Col1: uint32(b.c0 + b.cols - 1)})
		if err != nil {
			t.Fatalf("GET cells %s of %s: %v", rng, r.sheet, err)
		}
		if int64(cr.RowCount) != m.rowCount || int64(cr.ColCount) != m.colCount || int(cr.End) != len(r.entries) {
			t.Errorf("cells of %s: %d rows, %d cols, end %d; want %d, %d, %d", r.sheet, cr.RowCount, cr.ColCount, cr.End,
				m.rowCount, m.colCount, len(r.entries))
		}
		for k, raw := range cr.Raw {
			row, col, err := parseRef(k)
			if err != nil || row < b.r0 || col < b.c0 || row >= b.r0+b.rows || col >= b.c0+b.cols {
				t.Fatalf("cells of %s in %s: key %q outside the range (%v)", r.sheet, rng, k, err)
			}
			c, err := decodeCell(raw)
			if err != nil || c.empty() {
				t.Fatalf("cells of %s: %s = %s: %v (empty cells must not be listed)", r.sheet, k, raw, err)
			}
			got[pos{row, col}] = c
		}
	}
	compareCells(t, r.sheet+" cells", got, m.cells)
}

func compareCells(t *testing.T, what string, got, want map[pos]cellState) {
	t.Helper()
	bad := 0
	for p, w := range want {
		if g, ok := got[p]; !ok || !g.equal(w) {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s is %v, want %v", what, ref(p.row, p.col), g, w)
			}
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			if bad++; bad <= 10 {
				t.Errorf("%s: %s is %v, want empty", what, ref(p.row, p.col), g)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d cells differ in all", what, bad)
	}
}

// checkSnapshots lists the sheet's blobs and checks every snapshot's
// index and tiles against the model of the entries before it
// (snapshot-format.md): every snapshot requested, or the newest K when
// the deployment's retention is known (older ones may go at any time).
func (r *sheetRun) checkSnapshots(t *testing.T) {
	t.Helper()
	root := listDir(t, r.sheet, "")
	for _, s := range r.stableSnapshots() {
		name := strconv.FormatUint(s, 10)
		if !slices.Contains(root.Dirs, name) {
			t.Errorf("the blob root of %s lists %v, not the snapshot directory %s", r.sheet, root.Dirs, name)
			continue
		}
		checkSnapshot(t, r.sheet, s, r.modelBefore(s))
	}
}

func checkSnapshot(t *testing.T, sheet string, s uint64, want *model) {
	t.Helper()
	dir := strconv.FormatUint(s, 10)
	top := listDir(t, sheet, dir)
	slices.Sort(top.Blobs)
	if !slices.Equal(top.Blobs, []string{"index"}) || (len(want.cells) > 0 && !slices.Equal(top.Dirs, []string{"tiles"})) {
		t.Fatalf("snapshot %s/%s holds blobs %v and directories %v; want [index] and [tiles]", sheet, dir, top.Blobs, top.Dirs)
	}
	res := call(t, http.MethodGet, sheetPath(sheet)+"/blobs/"+dir+"/index", nil).expect(t, http.StatusOK, "GET index")
	if ct := res.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("a blob is served as %q", ct)
	}
	snapDir, err := thin(t).Blobs(sheet).GetDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	tilesDir, err := snapDir.GetDir(context.Background(), "tiles")
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		RowCount   *int64 `json:"rowCount"`
		ColCount   *int64 `json:"colCount"`
		TileFormat struct {
			Type       string `json:"type"`
			TileWidth  int64  `json:"tileWidth"`
			TileHeight int64  `json:"tileHeight"`
		} `json:"tileFormat"`
	}
	res.decode(t, &idx)
	tw, th := idx.TileFormat.TileWidth, idx.TileFormat.TileHeight
	if idx.RowCount == nil || idx.ColCount == nil || *idx.RowCount != want.rowCount || *idx.ColCount != want.colCount ||
		idx.TileFormat.Type != "grid" || tw < 1 || th < 1 {
		t.Fatalf("index of %s/%s is %s; want rowCount %d, colCount %d and a grid", sheet, dir, res.body, want.rowCount, want.colCount)
	}
	got := map[pos]cellState{}
	tiles := listDir(t, sheet, dir+"/tiles")
	if len(tiles.Dirs) != 0 {
		t.Errorf("%s/%s/tiles has directories %v", sheet, dir, tiles.Dirs)
	}
	for _, name := range tiles.Blobs {
		var r0, c0, h, w int64
		if n, err := fmt.Sscanf(name, "%d-%d-%d-%d", &r0, &c0, &h, &w); n != 4 || err != nil ||
			name != fmt.Sprintf("%d-%d-%d-%d", r0, c0, h, w) || h != th || w != tw || r0%th != 0 || c0%tw != 0 {
			t.Fatalf("tile name %s/%s/tiles/%s is not {r}-{c}-%d-%d at a tile origin", sheet, dir, name, th, tw)
		}
		body, err := tilesDir.ReadBlob(context.Background(), name)
		if err != nil {
			t.Fatalf("tile %s/%s/tiles/%s: %v", sheet, dir, name, err)
		}
		var cells map[string]json.RawMessage
		if err := json.Unmarshal(body, &cells); err != nil {
			t.Fatalf("tile %s: %v", name, err)
		}
		if len(cells) == 0 {
			t.Errorf("tile %s/%s/tiles/%s has no non-empty cell: it must not be written", sheet, dir, name)
		}
		for k, raw := range cells {
			dr, dc, err := parseRef(k)
			if err != nil || dr >= th || dc >= tw {
				t.Fatalf("tile %s: key %q is not a reference inside the tile (%v)", name, k, err)
			}
			c, err := decodeCell(raw)
			if err != nil || c.empty() {
				t.Fatalf("tile %s: %s = %s: %v (empty cells must not be written)", name, k, raw, err)
			}
			got[pos{r0 + dr, c0 + dc}] = c
		}
	}
	compareCells(t, fmt.Sprintf("snapshot %s/%s", sheet, dir), got, want.cells)
	if t.Failed() {
		t.Logf("tiles of %s/%s: %s", sheet, dir, strings.Join(tiles.Blobs, " "))
	}
}
