package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// retention is the deployment's snapshot retention as the harness
// reports it: K (0: unknown, or every snapshot kept) and G.
var retention = sync.OnceValues(func() (int, time.Duration) {
	if cfg.harness == "" {
		return 0, 0
	}
	var hc harnessConfig
	if err := controlErr(http.MethodGet, "/config", nil, &hc); err != nil {
		return 0, 0
	}
	return hc.SnapshotRetain, time.Duration(hc.SnapshotGraceMS) * time.Millisecond
})

// stableSnapshots are the snapshots of the run that no retention pass may
// remove once the run's writes are over: every one requested, or, when
// the deployment keeps K, the newest K (no newer snapshot will come to
// replace them).
func (r *sheetRun) stableSnapshots() []uint64 {
	ids := r.snapshotIDs()
	if k, _ := retention(); k > 0 && len(ids) > k {
		return ids[len(ids)-k:]
	}
	return ids
}

// retiredOnly reports whether named, the snapshots the log names, are the
// stable ones plus some older requested ones not yet retired.
func retiredOnly(named, requested, stable []uint64) bool {
	for _, s := range stable {
		if !slices.Contains(named, s) {
			return false
		}
	}
	for _, s := range named {
		if !slices.Contains(requested, s) {
			return false
		}
	}
	return true
}

// waitDirs polls the sheet's blob root until its directories are exactly
// want, and the log names exactly those snapshots.
func waitDirs(t *testing.T, sheet string, want []uint64, n uint64, within time.Duration) bool {
	t.Helper()
	names := make([]string, len(want))
	for i, s := range want {
		names[i] = strconv.FormatUint(s, 10)
	}
	slices.Sort(names)
	deadline := time.Now().Add(within)
	for {
		dirs := slices.Sorted(slices.Values(listDir(t, sheet, "").Dirs))
		var named []uint64
		for i, e := range readLog(t, sheet, 0, n) {
			if e.Snapshot != "" {
				named = append(named, uint64(i))
			}
		}
		if slices.Equal(dirs, names) && slices.Equal(named, want) {
			return true
		}
		if time.Now().After(deadline) {
			t.Logf("%s: directories %v, snapshots named %v; want %v", sheet, dirs, named, want)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRetirement shows snapshot retention on the deployment, with the
// harness's small K and G. First a sheet is written in bursts, each
// ending in a snapshot: the pass that follows a completion retires what
// the grace allows. Then two snapshots are requested back to back (two
// entries with pending, written by the harness): the second completes
// within G of the first, so its pass leaves the snapshot before them for
// its grace and queues a delayed pass, which the sweeper runs from the
// retire queue once the grace ends. In the end exactly the newest K
// snapshot directories remain, the log names exactly them, they hold the
// right cells, and the sheet reads back whole.
func TestRetirement(t *testing.T) {
	hc := needHarness(t, "know the functions' retention (K, G) and write entries with pending")
	k, grace := retention()
	if k <= 0 {
		skipOutsideCI(t, "the harness keeps every snapshot: nothing to retire")
	}
	t.Parallel()
	bursts := k + 1
	r := newSheetRun("retire-"+cfg.runID, generate(123, bursts*hc.SnapshotInterval+1))
	t.Cleanup(r.stop)
	var before harnessStats
	control(t, http.MethodGet, "/stats", &before)
	settle := grace + time.Duration(hc.SweepEveryMS)*time.Millisecond + 30*time.Second

	// Burst i appends up to and including the entry that requests the
	// snapshot at (i+1)*N (the interval of a small sheet is N).
	all := r.entries
	for i := range bursts {
		r.entries = all[:(i+1)*hc.SnapshotInterval+1]
		if err := r.appendFrom(len(r.acked)); err != nil {
			t.Fatal(err)
		}
		if err := r.waitWorkflows(); err != nil {
			t.Fatal(err)
		}
		if ids := r.snapshotIDs(); len(ids) != i+1 {
			t.Fatalf("after burst %d: snapshots requested at %v", i, ids)
		}
	}
	ids := r.snapshotIDs()
	if !waitDirs(t, r.sheet, ids[len(ids)-k:], uint64(len(r.entries)), settle) {
		t.Fatal("retention did not settle on the newest K snapshots after the bursts")
	}

	// Two requests back to back.
	for range 2 {
		n := len(r.entries)
		control(t, http.MethodPost, fmt.Sprintf("/inject?sheet=%s&seq=%d&workflow=snapshot", r.sheet, n), nil)
		r.entries = append(r.entries, genEntry{row: 0, col: 0, value: json.RawMessage(`"injected"`)})
		r.mu.Lock()
		r.acked = append(r.acked, time.Now())
		r.mu.Unlock()
	}
	if err := r.appendFrom(len(r.entries)); err != nil { // starts the watcher
		t.Fatal(err)
	}
	if err := r.waitWorkflows(); err != nil {
		t.Fatal(err)
	}
	dirs := listDir(t, r.sheet, "").Dirs
	viaDelayed := len(dirs) > k
	t.Logf("right after the two completions: directories %v", dirs)
	ids = r.snapshotIDs()
	want := ids[len(ids)-k:]
	if !waitDirs(t, r.sheet, want, uint64(len(r.entries)), settle) {
		t.Fatal("retention did not settle on the newest K snapshots")
	}
	r.checkLog(t)
	r.checkSnapshots(t)
	r.checkCells(t)
	var after harnessStats
	control(t, http.MethodGet, "/stats", &after)
	passes := after.Sweeps.Retire.Passes - before.Sweeps.Retire.Passes
	if viaDelayed && passes == 0 {
		t.Fatal("snapshots waiting for their grace were retired, yet the sweeper ran no delayed pass")
	}
	if !viaDelayed {
		t.Logf("the two completions were more than G apart on this machine: the delayed pass was not needed")
	}
	t.Logf("K=%d, G=%v: kept %v of %v; %d delayed passes drained by the sweeper meanwhile", k, grace, want, ids, passes)
}
