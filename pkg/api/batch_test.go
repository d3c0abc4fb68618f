package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// entriesBody is a batch append at id of n cells of row row, with
// members added to each entry.
func entriesBody(id string, n, row int, members string) string {
	es := make([]string, n)
	for i := range es {
		es[i] = setCell(row, i, members)
	}
	return `{"sequenceId":` + id + `,"entries":[` + strings.Join(es, ",") + `]}`
}

func TestBatchAppend(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100})
	r := f.do("POST", "/v1/sheets/s1/log", entriesBody(`"0"`, 3, 0, `"value":"a"`))
	if r.status != 200 {
		t.Fatalf("batch of 3: %d %s", r.status, r.body)
	}
	jsonEq(t, r.json(t), `{"sequenceId":"0","endSequenceId":"3"}`)
	// One entry as "entry" keeps its reply; one as "entries" says where
	// it ends.
	jsonEq(t, f.post("s1", "3", setCell(1, 0, `"value":1`)), `{"sequenceId":"3"}`)
	r = f.do("POST", "/v1/sheets/s1/log", entriesBody("4", 1, 2, `"value":true`))
	jsonEq(t, r.json(t), `{"sequenceId":"4","endSequenceId":"5"}`)
	// The largest batch.
	r = f.do("POST", "/v1/sheets/s1/log", `{"snapshotId":0,`+entriesBody("5", 99, 3, `"value":null,"format":"@"`)[1:])
	jsonEq(t, r.json(t), `{"sequenceId":"5","endSequenceId":"104"}`)

	page := f.get("/v1/sheets/s1/log?start=0&end=6")
	entries := page["entries"].([]any)
	if len(entries) != 6 {
		t.Fatalf("log: %v", page)
	}
	jsonEq(t, entries[2], setCell(0, 2, `"value":"a"`))
	jsonEq(t, entries[5], setCell(3, 0, `"value":null,"format":"@"`))
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=A1:C4"), `{"endSequenceId":"104","rowCount":4,"colCount":99,
		"cells":{"A1":{"value":"a"},"B1":{"value":"a"},"C1":{"value":"a"},"A2":{"value":1},"A3":{"value":true},
		"A4":{"value":null,"format":"@"},"B4":{"value":null,"format":"@"},"C4":{"value":null,"format":"@"}}}`)

	// A stale batch is a conflict naming the next id, and writes nothing.
	r = f.do("POST", "/v1/sheets/s1/log", entriesBody("100", 2, 9, `"value":1`))
	if r.status != 409 {
		t.Fatalf("stale batch: %d %s", r.status, r.body)
	}
	jsonEq(t, r.json(t)["nextSequenceId"], `"104"`)
	if end := f.get("/v1/sheets/s1")["endSequenceId"]; end != "104" {
		t.Fatalf("end %v after a conflict", end)
	}
}

// TestBatchRefusals: the spec's cases, each a 400 that writes nothing,
// and the message of a bad entry names its index.
func TestBatchRefusals(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100})
	f.post("s1", "0", setCell(0, 0, `"value":1`))
	entries := make([]string, 60)
	for i := range entries {
		entries[i] = setCell(1, i, `"value":1`)
	}
	entries[57] = setCell(1, 57, `"value":{"type":"CellError","value":"#NOPE!"}`)
	for name, c := range map[string]struct{ body, says string }{
		"both":          {`{"sequenceId":1,"entry":` + setCell(1, 1, "") + `,"entries":[` + setCell(1, 1, "") + `]}`, `both "entry" and "entries"`},
		"neither":       {`{"sequenceId":1}`, `"entry"`},
		"0 entries":     {entriesBody("1", 0, 1, ""), "not 0"},
		"100 entries":   {entriesBody("1", 100, 1, ""), "not 100"},
		"bad entry 57":  {`{"sequenceId":1,"entries":[` + strings.Join(entries, ",") + `]}`, `entry 57 of "entries"`},
		"pending in 42": {strings.Replace(entriesBody("1", 50, 1, ""), `"column":42`, `"column":42,"pending":"snapshot"`, 1), `entry 42 of "entries"`},
	} {
		r := f.do("POST", "/v1/sheets/s1/log", c.body)
		m := r.json(t)
		if r.status != 400 || m["type"] != "ValidationError" || !strings.Contains(m["message"].(string), c.says) {
			t.Errorf("%s: %d %s; want a 400 saying %s", name, r.status, r.body, c.says)
		}
	}
	if end := f.get("/v1/sheets/s1")["endSequenceId"]; end != "1" {
		t.Fatalf("end %v after refused batches", end)
	}
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=A2:CV2")["cells"], `{}`)
}

// TestBatchSetsPendingOnce: the server, not the client, requests a
// snapshot, on the first entry of a batch at which one is due.
func TestBatchSetsPendingOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 5, noWorker: true})
	f.post("s1", "0", setCell(0, 0, `"value":1`))
	for _, b := range [][2]int{{1, 12}, {13, 30}} {
		r := f.do("POST", "/v1/sheets/s1/log", entriesBody(fmt.Sprint(b[0]), b[1], b[0], `"value":2`))
		if r.status != 200 {
			t.Fatalf("batch at %d: %d %s", b[0], r.status, r.body)
		}
	}
	_, pending := snapshotsIn(t, f.get("/v1/sheets/s1/log"))
	if !slices.Equal(pending, []int{5}) {
		t.Fatalf("pending at %v, want [5]", pending)
	}
}
