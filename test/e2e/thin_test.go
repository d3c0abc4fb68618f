package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// api is the Go thin client (pkg/client) of the deployment under test,
// with the suite's credentials: what the suite drives the deployment
// through, except where a test looks at the HTTP exchange itself (call,
// try).
var api = sync.OnceValues(func() (*client.Client, error) {
	opts := []client.Option{client.WithToken(cfg.token), client.WithUserAgent("sheetlog-e2e")}
	if cfg.sigv4 {
		creds := cfg.creds
		opts = append(opts, client.WithAuth(&client.SigV4{
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
			Region:      cfg.region,
		}))
	}
	return client.New(cfg.base, opts...)
})

// thin returns the client, failing the test when it cannot be made.
func thin(t testing.TB) *client.Client {
	t.Helper()
	c, err := api()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// entryOf is the log entry of a generated edit.
func entryOf(e genEntry) eventlog.Entry {
	b, _ := json.Marshal(e.body())
	return eventlog.Entry{Body: b}
}

// decodeLogEntry reads an entry back into the suite's own shape (which
// records the members it had).
func decodeLogEntry(e eventlog.Entry) (logEntry, error) {
	var le logEntry
	if err := json.Unmarshal(e.Body, &le); err != nil {
		return le, err
	}
	for k, v := range map[string]string{"snapshot": e.Snapshot, "history": e.History, "pending": e.Pending} {
		if v != "" {
			le.present[k] = true
		}
	}
	le.Snapshot, le.History, le.Pending = e.Snapshot, e.History, e.Pending
	return le, nil
}

// TestContention has 8 thin clients append 40 entries each to one hot
// sheet at once: a conflict is caught up with and retried after a
// jittered backoff, so every writer makes progress and all 320 appends
// land exactly once.
//
// It runs alone, before the parallel tests: the hot sheet's conflicts
// are its measurement, and other tests' traffic would blur it.
func TestContention(t *testing.T) {
	needDeployment(t)
	c := thin(t)
	sheet := "hot-" + cfg.runID
	ctx, cancel := context.WithTimeout(context.Background(), cfg.wait)
	defer cancel()
	r, err := c.RunContention(ctx, sheet, 8, 40)
	t.Log(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckContention(ctx, sheet, 8, 40); err != nil {
		t.Fatal(err)
	}
	reportMetric("contention: conflicts per writer (8 × 40 appends)", ints(r.PerWriter))
	reportMetric("contention: seconds for 8 × 40 appends", []float64{r.Elapsed.Seconds()})
}

func ints(v []int) []float64 {
	out := make([]float64, len(v))
	for i, n := range v {
		out[i] = float64(n)
	}
	return out
}

// TestThinEngine loads a sheet whose snapshots the deployment's workflows
// wrote into an engine over the thin client, reads every cell against
// the model, appends through it, and reads the appends back.
func TestThinEngine(t *testing.T) {
	needDeployment(t)
	t.Parallel()
	r := newSheetRun("thin-"+cfg.runID, generate(41, 120))
	t.Cleanup(r.stop)
	r.runAndCheck(t)
	c := thin(t)
	ctx := t.Context()
	e, err := spreadsheet.New(r.sheet, c.Log(r.sheet), c.Blobs(r.sheet), client.Host, spreadsheet.Options{SnapshotInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	m := r.modelBefore(uint64(len(r.entries)))
	read := func(what string) {
		t.Helper()
		got := map[pos]cellState{}
		for _, b := range [][4]uint32{{0, 0, mainRows - 1, mainCols - 1}, {farRow0, farCol0, farRow0 + farRows - 1, farCol0 + farCols - 1}} {
			v, err := e.Range(ctx, a1.Range{Row0: b[0], Col0: b[1], Row1: b[2], Col1: b[3]})
			if err != nil {
				t.Fatal(err)
			}
			for _, pc := range v.Cells {
				raw := pc.Cell.AppendJSON(nil)
				cs, err := decodeCell(raw)
				if err != nil {
					t.Fatal(err)
				}
				got[pos{int64(pc.Row), int64(pc.Col)}] = cs
			}
		}
		compareCells(t, what, got, m.cells)
	}
	read("thin engine over " + r.sheet)
	if st := e.Stats(); st.SnapshotsLoaded != 1 {
		t.Errorf("the thin engine loaded %d snapshots, want 1", st.SnapshotsLoaded)
	}
	for i := range 5 {
		ge := genEntry{row: 3, col: int64(i), value: json.RawMessage(fmt.Sprint(i * 11))}
		ent, err := cell.DecodeEntry(entryOf(ge).Body, cell.Strict)
		if err != nil {
			t.Fatal(err)
		}
		next, err := e.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Append(ctx, next, ent, nil)
		if err != nil || res.SnapshotRequested {
			t.Fatalf("thin append: %+v, %v", res, err)
		}
		m.apply(ge)
	}
	read("thin engine after its own appends")
}
