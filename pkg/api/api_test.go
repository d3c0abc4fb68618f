package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	sheetapi "github.com/sheetlog/sheetlog/api"
)

// post appends entry at id (written as given: a JSON string or number)
// and fails the test unless it is acknowledged.
func (f *fixture) post(sheet, id, entry string) map[string]any {
	f.t.Helper()
	r := f.do("POST", "/v1/sheets/"+sheet+"/log", `{"sequenceId":`+id+`,"entry":`+entry+`}`)
	if r.status != 200 {
		f.t.Fatalf("append at %s: %d %s", id, r.status, r.body)
	}
	return r.json(f.t)
}

func (f *fixture) get(target string) map[string]any {
	f.t.Helper()
	r := f.do("GET", target, "")
	if r.status != 200 {
		f.t.Fatalf("GET %s: %d %s", target, r.status, r.body)
	}
	return r.json(f.t)
}

func setCell(row, col int, members string) string {
	e := fmt.Sprintf(`{"type":"SetCellValueAndFormat","row":%d,"column":%d`, row, col)
	if members != "" {
		e += "," + members
	}
	return e + "}"
}

func jsonEq(t testing.TB, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(normalize(got), w) {
		g, _ := json.Marshal(got)
		t.Fatalf("got  %s\nwant %s", g, want)
	}
}

func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

// snapshotsIn lists the ids whose entries carry snapshot / pending, from
// GET log.
func snapshotsIn(t testing.TB, page map[string]any) (snap, pending []int) {
	t.Helper()
	start := 0
	fmt.Sscan(page["startSequenceId"].(string), &start)
	for i, e := range page["entries"].([]any) {
		m := e.(map[string]any)
		if s, ok := m["snapshot"]; ok {
			if s != fmt.Sprint(start+i) {
				t.Fatalf("entry %d has snapshot %v", start+i, s)
			}
			snap = append(snap, start+i)
		}
		if p, ok := m["pending"]; ok {
			if p != "snapshot" {
				t.Fatalf("entry %d has pending %v", start+i, p)
			}
			pending = append(pending, start+i)
		}
	}
	return snap, pending
}

// TestAppendSnapshotAndRead runs the whole API on one sheet: appends
// through the engine (which requests a snapshot every 5 entries), the
// worker completes them, and the log, status, blobs and cells show it.
func TestAppendSnapshotAndRead(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 5})
	var sent []string
	for i := range 12 {
		e := setCell(i/2, i%2, fmt.Sprintf(`"value":%d`, i))
		id := fmt.Sprintf(`"%d"`, i)
		if i%2 == 1 {
			id = fmt.Sprint(i) // the JSON number form
		}
		rep := f.post("s1", id, e)
		jsonEq(t, rep, fmt.Sprintf(`{"sequenceId":"%d"}`, i))
		sent = append(sent, e)
		f.wait()
	}

	page := f.get("/v1/sheets/s1/log")
	if page["isComplete"] != true || page["startSequenceId"] != "0" || page["endSequenceId"] != "12" {
		t.Fatalf("page %v", page)
	}
	snap, pending := snapshotsIn(t, page)
	if !slices.Equal(snap, []int{5, 10}) || len(pending) != 0 {
		t.Fatalf("snapshots at %v, pending at %v; want [5 10] and none", snap, pending)
	}
	for i, e := range page["entries"].([]any) {
		m := e.(map[string]any)
		delete(m, "snapshot")
		jsonEq(t, m, sent[i])
	}

	// The snapshot-relative query starts at the newest snapshot and names
	// it when the caller knows an older one.
	page = f.get("/v1/sheets/s1/log?start=snapshot&snapshotId=5")
	if page["startSequenceId"] != "10" || len(page["entries"].([]any)) != 2 {
		t.Fatalf("start=snapshot: %v", page)
	}
	jsonEq(t, page["lastSnapshot"], `{"sequenceId":"10","blobId":"10"}`)
	page = f.get("/v1/sheets/s1/log?start=3&end=5&snapshotId=10")
	if _, ok := page["lastSnapshot"]; ok || page["endSequenceId"] != "5" || page["isComplete"] != true {
		t.Fatalf("start=3&end=5: %v", page)
	}

	jsonEq(t, f.get("/v1/sheets/s1"), `{"sheet":"s1","startSequenceId":"0","endSequenceId":"12",
		"lastSnapshot":{"sequenceId":"10","blobId":"10"},"pending":[],"rowCount":6,"colCount":2}`)

	root := f.get("/v1/sheets/s1/blobs/")
	dirs := root["dirs"].([]any)
	slices.SortFunc(dirs, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
	jsonEq(t, root, `{"blobs":[],"dirs":["10","5"]}`)
	jsonEq(t, f.get("/v1/sheets/s1/blobs/10/"), `{"blobs":["index"],"dirs":["tiles"]}`)
	jsonEq(t, f.get("/v1/sheets/s1/blobs/10/tiles/"), `{"blobs":["0-0-100-100"],"dirs":[]}`)

	idx := f.do("GET", "/v1/sheets/s1/blobs/10/index", "")
	if idx.status != 200 || idx.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("index: %d %v", idx.status, idx.header)
	}
	jsonEq(t, idx.json(t), `{"rowCount":5,"colCount":2,"tileFormat":{"type":"grid","tileWidth":100,"tileHeight":100}}`)
	tile := f.do("GET", "/v1/sheets/s1/blobs/10/tiles/0-0-100-100", "")
	jsonEq(t, tile.json(t), `{"A1":{"value":0},"B1":{"value":1},"A2":{"value":2},"B2":{"value":3},
		"A3":{"value":4},"B3":{"value":5},"A4":{"value":6},"B4":{"value":7},"A5":{"value":8},"B5":{"value":9}}`)

	cells := f.get("/v1/sheets/s1/cells?range=A5:B6")
	jsonEq(t, cells, `{"endSequenceId":"12","rowCount":6,"colCount":2,
		"cells":{"A5":{"value":8},"B5":{"value":9},"A6":{"value":10},"B6":{"value":11}}}`)
}

// TestServerSetsPending checks that the server, not the client, requests
// snapshots: with no worker running, the first append N entries in
// carries pending, and no second request is made while it is pending.
func TestServerSetsPending(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 3, noWorker: true})
	for i := range 8 {
		f.post("s1", fmt.Sprint(i), setCell(0, i, `"value":"x"`))
	}
	snap, pending := snapshotsIn(t, f.get("/v1/sheets/s1/log"))
	if len(snap) != 0 || !slices.Equal(pending, []int{3}) {
		t.Fatalf("snapshots %v, pending %v; want none and [3]", snap, pending)
	}
	jsonEq(t, f.get("/v1/sheets/s1")["pending"], `[{"sequenceId":"3","workflow":"snapshot"}]`)
}

func TestAppendReplyNamesNewerSnapshot(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 2})
	for i := range 3 {
		f.post("s1", fmt.Sprint(i), setCell(i, 0, `"value":true`))
		f.wait()
	}
	// Entry 2 requested the snapshot, which is now complete.
	rep := f.do("POST", "/v1/sheets/s1/log", `{"sequenceId":"3","snapshotId":"0","entry":`+setCell(0, 0, "")+`}`)
	jsonEq(t, rep.json(t), `{"sequenceId":"3","lastSnapshot":{"sequenceId":"2","blobId":"2"}}`)
	rep = f.do("POST", "/v1/sheets/s1/log", `{"snapshotId":2,"sequenceId":4,"entry":`+setCell(0, 0, "")+`}`)
	jsonEq(t, rep.json(t), `{"sequenceId":"4"}`)
}

func TestCells(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100})
	// The example of snapshot-format.md, then B1 cleared and a
	// format-only cell far away.
	for i, e := range []string{
		setCell(0, 0, `"value":1`),
		setCell(0, 1, `"value":"x"`),
		setCell(1, 0, `"value":true`),
		setCell(4, 2, `"value":null,"format":"0.00"`),
		setCell(0, 0, `"value":2`),
		setCell(0, 1, `"format":null`),
		setCell(99, 27, `"format":"yyyy-mm-dd"`),
		setCell(3, 3, `"value":{"type":"CellError","value":"#DIV/0!"}`),
	} {
		f.post("s1", fmt.Sprint(i), e)
	}
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=A1:C5"), `{"endSequenceId":"8","rowCount":100,"colCount":28,
		"cells":{"A1":{"value":2},"A2":{"value":true},"C5":{"value":null,"format":"0.00"}}}`)
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=AB100"), `{"endSequenceId":"8","rowCount":100,"colCount":28,
		"cells":{"AB100":{"format":"yyyy-mm-dd"}}}`)
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=E5:A1")["cells"], `{"A1":{"value":2},"A2":{"value":true},
		"D4":{"value":{"type":"CellError","value":"#DIV/0!"}},"C5":{"value":null,"format":"0.00"}}`)
	// Exactly the limit is allowed.
	f.get("/v1/sheets/s1/cells?range=A1:CV100")
	// A sheet never written is empty.
	jsonEq(t, f.get("/v1/sheets/never/cells?range=B2"), `{"endSequenceId":"0","rowCount":0,"colCount":0,"cells":{}}`)
	jsonEq(t, f.get("/v1/sheets/never"), `{"sheet":"never","startSequenceId":"0","endSequenceId":"0",
		"lastSnapshot":null,"pending":[],"rowCount":0,"colCount":0}`)
}

func TestLogPaging(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 100, logPage: 3})
	for i := range 7 {
		f.post("s1", fmt.Sprint(i), setCell(i, 0, `"value":1.5`))
	}
	var got int
	start := "start"
	for pages := 0; ; pages++ {
		p := f.get("/v1/sheets/s1/log?start=" + start)
		got += len(p["entries"].([]any))
		if p["isComplete"] == true {
			if pages != 2 || got != 7 || p["endSequenceId"] != "7" {
				t.Fatalf("%d pages, %d entries, end %v", pages+1, got, p["endSequenceId"])
			}
			break
		}
		start = p["endSequenceId"].(string)
	}
	// An empty page at the end, and an end at or below start.
	jsonEq(t, f.get("/v1/sheets/s1/log?start=7"), `{"startSequenceId":"7","endSequenceId":"7","isComplete":true,"entries":[]}`)
	jsonEq(t, f.get("/v1/sheets/s1/log?start=4&end=2"), `{"startSequenceId":"4","endSequenceId":"4","isComplete":true,"entries":[]}`)
	jsonEq(t, f.get("/v1/sheets/s1/log?start=5&end=end"), `{"startSequenceId":"5","endSequenceId":"7","isComplete":true,
		"entries":[{"type":"SetCellValueAndFormat","row":5,"column":0,"value":1.5},{"type":"SetCellValueAndFormat","row":6,"column":0,"value":1.5}]}`)
}

func TestBlobListingPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{blobPage: 2})
	root, _ := f.blobs.Sheet("s1")
	ctx := context.Background()
	want := []string{"a", "b b", "c/d", "é", "x%2Fy"}
	for _, n := range want {
		dir, name := root, n
		if i := strings.IndexByte(n, '/'); i >= 0 && n != "x%2Fy" {
			dir, _ = root.GetDir(ctx, n[:i])
			name = n[i+1:]
		}
		if err := dir.WriteBlob(ctx, name, []byte(n)); err != nil {
			t.Fatal(err)
		}
	}
	var blobs, dirs []string
	cont := ""
	for range 10 {
		p := f.get("/v1/sheets/s1/blobs/?continuation=" + urlQueryEscape(cont))
		for _, b := range p["blobs"].([]any) {
			blobs = append(blobs, b.(string))
		}
		for _, d := range p["dirs"].([]any) {
			dirs = append(dirs, d.(string))
		}
		c, ok := p["continuation"]
		if !ok {
			break
		}
		cont = c.(string)
	}
	slices.Sort(blobs)
	// A name holding "%" cannot be addressed through an API Gateway HTTP
	// API (it decodes the path twice): it is not listed, and reading it is
	// a 400, as on every deployment.
	if !slices.Equal(blobs, []string{"a", "b b", "é"}) || !slices.Equal(dirs, []string{"c"}) {
		t.Fatalf("blobs %q dirs %q", blobs, dirs)
	}
	// Names are escaped in paths: a space and UTF-8.
	for target, want := range map[string]string{
		"/v1/sheets/s1/blobs/b%20b":  "b b",
		"/v1/sheets/s1/blobs/%C3%A9": "é",
		"/v1/sheets/s1/blobs/c/d":    "c/d",
	} {
		r := f.do("GET", target, "")
		if r.status != 200 || string(r.body) != want {
			t.Fatalf("GET %s: %d %q", target, r.status, r.body)
		}
	}
	for _, target := range []string{"/v1/sheets/s1/blobs/x%252Fy", "/v1/sheets/s1/blobs/a%3Fb", "/v1/sheets/s1/blobs/a%3Fb/"} {
		if r := f.do("GET", target, ""); r.status != 400 || r.json(t)["type"] != "InvalidBlobNameError" {
			t.Fatalf("GET %s: %d %s, want 400 InvalidBlobNameError", target, r.status, r.body)
		}
	}
	// An empty directory lists as empty.
	jsonEq(t, f.get("/v1/sheets/s1/blobs/nothing/here/"), `{"blobs":[],"dirs":[]}`)
	jsonEq(t, f.get("/v1/sheets/other/blobs/"), `{"blobs":[],"dirs":[]}`)
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "+", "%2B", "&", "%26", "=", "%3D", "#", "%23", " ", "%20")
	return r.Replace(s)
}

func TestServiceEndpoints(t *testing.T) {
	var healthErr error
	f := newFixture(t, fixtureOptions{token: "s3cret", health: func(context.Context) error { return healthErr }})

	r := f.do("GET", "/healthz", "", "Authorization", "")
	if r.status != 200 || string(r.body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	healthErr = errors.New("dial tcp 10.0.0.1:443: connection refused")
	r = f.do("GET", "/healthz", "")
	jsonEq(t, r.json(t), `{"type":"StorageError","message":"a backing store cannot be reached","statusCode":503}`)
	if r.status != 503 || strings.Contains(string(r.body), "10.0.0.1") {
		t.Fatalf("failing healthz: %d %s", r.status, r.body)
	}

	r = f.do("GET", "/v1/openapi.yaml", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/yaml" || string(r.body) != string(sheetapi.OpenAPI) {
		t.Fatalf("openapi.yaml: %d %v", r.status, r.header)
	}

	// HEAD is GET without a body.
	r = f.do("HEAD", "/v1/sheets/s1", "")
	if r.status != 200 || len(r.body) != 0 || r.header.Get("Content-Length") == "0" {
		t.Fatalf("HEAD: %d %q %v", r.status, r.body, r.header)
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t, fixtureOptions{token: "tok", origins: []string{"https://app.example", " https://b.example "}})
	const app = "https://app.example"

	r := f.do("GET", "/v1/sheets/s1", "", "Origin", app)
	if r.header.Get("Access-Control-Allow-Origin") != app || !slices.Contains(r.header.Values("Vary"), "Origin") {
		t.Fatalf("allowed origin: %v", r.header)
	}
	r = f.do("GET", "/v1/sheets/s1", "", "Origin", "https://b.example")
	if r.header.Get("Access-Control-Allow-Origin") != "https://b.example" {
		t.Fatalf("trimmed origin: %v", r.header)
	}
	r = f.do("GET", "/v1/sheets/s1", "", "Origin", "https://evil.example")
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "" || !slices.Contains(r.header.Values("Vary"), "Origin") {
		t.Fatalf("other origin: %d %v", r.status, r.header)
	}
	// Errors carry CORS headers too, so that the page can read them.
	r = f.do("GET", "/v1/sheets/s1", "", "Origin", app, "Authorization", "")
	if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("401: %d %v", r.status, r.header)
	}
	// A preflight needs no token.
	r = f.do("OPTIONS", "/v1/sheets/s1/log", "", "Origin", app, "Authorization", "",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != app ||
		r.header.Get("Access-Control-Allow-Methods") != "GET, HEAD, POST, OPTIONS" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		r.header.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = f.do("OPTIONS", "/v1/sheets/s1/log", "", "Origin", "https://evil.example", "Authorization", "",
		"Access-Control-Request-Method", "POST")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.status, r.header)
	}
	r = f.do("OPTIONS", "/v1/nothing", "", "Origin", app, "Access-Control-Request-Method", "GET")
	if r.status != 404 {
		t.Fatalf("preflight of no route: %d", r.status)
	}

	any := newFixture(t, fixtureOptions{origins: []string{"*"}})
	r = any.do("GET", "/healthz", "", "Origin", "https://whoever.example")
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("wildcard: %v", r.header)
	}
	r = any.do("GET", "/healthz", "")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no Origin, yet: %v", r.header)
	}
}

// TestConcurrentAppends races clients on one sheet: each id is
// acknowledged exactly once and every loser gets a ConflictError naming a
// later next id.
func TestConcurrentAppends(t *testing.T) {
	f := newFixture(t, fixtureOptions{interval: 4})
	f.check = false // kin-openapi validation is slow; the replies are checked below
	const clients, perClient = 6, 15
	acked := make(chan int, clients*perClient)
	errc := make(chan error, clients)
	for c := range clients {
		go func() {
			next := 0
			for n := 0; n < perClient; {
				r := f.do("POST", "/v1/sheets/s1/log", fmt.Sprintf(`{"sequenceId":%d,"entry":%s}`, next, setCell(c, n, `"value":1`)))
				var m map[string]any
				if err := json.Unmarshal(r.body, &m); err != nil {
					errc <- err
					return
				}
				switch r.status {
				case 200:
					acked <- next
					next++
					n++
				case 409:
					var nn int
					fmt.Sscan(m["nextSequenceId"].(string), &nn)
					if nn <= next {
						errc <- fmt.Errorf("conflict at %d names next %d", next, nn)
						return
					}
					next = nn
				default:
					errc <- fmt.Errorf("status %d: %s", r.status, r.body)
					return
				}
			}
			errc <- nil
		}()
	}
	for range clients {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	close(acked)
	var ids []int
	for id := range acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id != i {
			t.Fatalf("acknowledged ids %v are not 0..%d", ids, len(ids)-1)
		}
	}
	f.wait()
	st := f.get("/v1/sheets/s1")
	if st["endSequenceId"] != fmt.Sprint(clients*perClient) {
		t.Fatalf("status %v", st)
	}
	cells := f.get(fmt.Sprintf("/v1/sheets/s1/cells?range=A1:%s", cellRef(clients-1, perClient-1)))["cells"].(map[string]any)
	if len(cells) != clients*perClient {
		t.Fatalf("%d cells", len(cells))
	}
}

func cellRef(row, col int) string {
	letters := ""
	for n := col + 1; n > 0; n = (n - 1) / 26 {
		letters = string(rune('A'+(n-1)%26)) + letters
	}
	return fmt.Sprintf("%s%d", letters, row+1)
}
