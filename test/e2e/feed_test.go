package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBatchAndChangeFeed: a batch append lands whole, and the change
// feed answers a wait on a page that has entries at once, waits out its
// time on one that has none, and refuses a wait without a numeric start.
// (A wait woken by another client's append is not tried here: the local
// harness runs one API invocation at a time, so the append would queue
// behind the wait. pkg/api, internal/lambdarun and cmd/server test it.)
func TestBatchAndChangeFeed(t *testing.T) {
	needDeployment(t)
	t.Parallel()
	log := sheetPath("e2e-"+cfg.runID+"-feed") + "/log"

	entries := make([]map[string]any, 99)
	for i := range entries {
		entries[i] = map[string]any{"type": "SetCellValueAndFormat", "row": i / 10, "column": i % 10, "value": i}
	}
	var ack struct {
		SequenceID string `json:"sequenceId"`
		End        string `json:"endSequenceId"`
	}
	call(t, http.MethodPost, log, map[string]any{"sequenceId": 0, "entries": entries}).
		expect(t, http.StatusOK, "batch of 99").decode(t, &ack)
	if ack.SequenceID != "0" || ack.End != "99" {
		t.Fatalf("batch reply %+v", ack)
	}
	bad := append([]map[string]any(nil), entries[:60]...)
	bad[57] = map[string]any{"type": "SetCellValueAndFormat", "row": -1, "column": 0}
	r := call(t, http.MethodPost, log, map[string]any{"sequenceId": 99, "entries": bad}).expect(t, http.StatusBadRequest, "bad entry 57")
	if !strings.Contains(string(r.body), "entry 57") {
		t.Fatalf("the 400 does not name entry 57: %s", r.body)
	}

	var p logPage
	start := time.Now()
	call(t, http.MethodGet, log+"?start=90&wait=20", nil).expect(t, http.StatusOK, "wait on entries").decode(t, &p)
	if p.Start != "90" || p.End != "99" || len(p.Entries) != 9 || time.Since(start) > 10*time.Second {
		t.Fatalf("a wait on a page with entries: %+v after %v", p, time.Since(start))
	}
	start = time.Now()
	call(t, http.MethodGet, log+"?start=99&wait=2", nil).expect(t, http.StatusOK, "wait at the end").decode(t, &p)
	if took := time.Since(start); p.Start != "99" || p.End != "99" || !p.Complete || len(p.Entries) != 0 || took < 1500*time.Millisecond {
		t.Fatalf("a wait at the log's end: %+v after %v", p, took)
	}
	for _, q := range []string{"start=start&wait=1", "wait=1", "start=0&end=5&wait=1", "start=0&wait=21"} {
		call(t, http.MethodGet, fmt.Sprintf("%s?%s", log, q), nil).expect(t, http.StatusBadRequest, q)
	}
}
