package api

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// FuzzHandler throws arbitrary requests at the handler: any method,
// request target (path and query), body and a few headers. No request may
// get a 5xx (the memory stores never fail) or panic, every error must be
// a well-formed JSON error whose type matches its status (checkReply), a
// request that is refused writes nothing, and an append that succeeds
// writes once (one entry or one whole batch).
//
//	go test -run '^$' -fuzz FuzzHandler -fuzztime 60s ./pkg/api/
func FuzzHandler(f *testing.F) {
	logs := &countingLogs{Store: logmem.NewStore(logmem.Options{})}
	fx := newFixture(f, fixtureOptions{token: "tok", interval: 3, origins: []string{"https://app.example"}, blobPage: 2, logs: logs})
	fx.check = false
	// Give the seeds something to find: entries, snapshots and blobs.
	for i := range 8 {
		fx.do("POST", "/v1/sheets/s1/log", `{"sequenceId":`+itoa(i)+`,"entry":`+setCell(i, i%3, `"value":1`)+`}`)
		fx.wait()
	}
	const auth = "Bearer tok"
	const ct = "application/json"
	seeds := []struct {
		method, target, body, ct, auth, origin string
	}{
		{"GET", "/healthz", "", "", "", ""},
		{"GET", "/v1/openapi.yaml", "", "", auth, ""},
		{"GET", "/v1/sheets/s1", "", "", auth, ""},
		{"HEAD", "/v1/sheets/s1", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/log", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/log?start=snapshot&end=5&snapshotId=0", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/log?start=2&end=end", "", "", auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":"8","snapshotId":"3","entry":{"type":"SetCellValueAndFormat","row":3,"column":2,"value":true,"format":"0.00"}}`, ct, auth, ""},
		{"POST", "/v1/sheets/s2/log", `{"sequenceId":0,"entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":{"type":"CellError","value":"#N/A"}}}`, ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":1e2,"entry":{"type":"SetCellValueAndFormat","row":1.0,"column":0,"pending":"x"}}`, ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":"9","entries":[{"type":"SetCellValueAndFormat","row":3,"column":2,"value":1},{"type":"SetCellValueAndFormat","row":3,"column":3,"value":"x"}]}`, ct, auth, ""},
		{"POST", "/v1/sheets/s3/log", entriesBody("0", 99, 0, `"value":1`), ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", entriesBody("9", 100, 0, `"value":1`), ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":9,"entries":[]}`, ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":9,"entry":` + setCell(0, 0, "") + `,"entries":[` + setCell(0, 0, "") + `]}`, ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", `{"sequenceId":9}`, ct, auth, ""},
		{"POST", "/v1/sheets/s1/log", strings.Replace(entriesBody("9", 60, 1, ""), `"column":57`, `"column":57.5`, 1), ct, auth, ""},
		{"GET", "/v1/sheets/s1/cells?range=A1:J20", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/cells?range=B2", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/?continuation=x", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/3/", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/3/index", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/3/tiles/0-0-100-100", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/3%2Findex", "", "", auth, ""},
		{"GET", "/v1/sheets/s1/blobs/3//index/", "", "", auth, ""},
		{"OPTIONS", "/v1/sheets/s1/log", "", "", "", "https://app.example"},
		{"DELETE", "/v1/sheets/s1/log", "", "", auth, ""},
		{"GET", "/v1/sheets/..%2F/log", "", "", auth, ""},
		{"GET", "/nothing?x=%zz", "", "", "", ""},
		{"PUT", "/v1/sheets/s1/log", "{}", ct, "Bearer nope", "https://evil.example"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, []byte(s.body), s.ct, s.auth, s.origin)
	}
	f.Fuzz(func(t *testing.T, method, target string, body []byte, contentType, authorization, origin string) {
		// What a real server would refuse before any handler runs is
		// out of scope: parse the request line as net/http does.
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return
		}
		for _, h := range [][2]string{{"Content-Type", contentType}, {"Authorization", authorization}, {"Origin", origin}} {
			if h[1] == "" {
				continue
			}
			if strings.ContainsAny(h[1], "\r\n\x00") {
				return
			}
			req.Header.Set(h[0], h[1])
		}
		if authorization != auth {
			// Failed attempts hold their address back; keep them away
			// from the address the good requests come from.
			req.RemoteAddr = "192.0.2.99:1"
		}
		req.Body = http.NoBody
		if len(body) > 0 {
			req.Body = readCloser{bytes.NewReader(body)}
		}
		req.ContentLength = int64(len(body))
		rec := httptest.NewRecorder()
		before := logs.appends.Load()
		fx.h.ServeHTTP(rec, req)
		r := reply{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		if r.status >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, r.status, r.body)
		}
		checkReply(t, req, r)
		wrote := logs.appends.Load() - before
		if ok := r.status == 200 && req.Method == "POST"; (ok && wrote != 1) || (!ok && wrote != 0) {
			t.Fatalf("%s %q: %d %s after %d appends to the log", method, target, r.status, r.body, wrote)
		}
	})
}

type readCloser struct{ *bytes.Reader }

// countingLogs counts the appends its logs acknowledge.
type countingLogs struct {
	eventlog.Store
	appends atomic.Int64
}

func (c *countingLogs) Log(sheet string) (eventlog.EventLog, error) {
	l, err := c.Store.Log(sheet)
	return countingLog{l, c}, err
}

type countingLog struct {
	eventlog.EventLog
	c *countingLogs
}

func (l countingLog) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

func (l countingLog) AddEntries(ctx context.Context, id eventlog.SequenceID, es []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	s, err := l.EventLog.AddEntries(ctx, id, es, known)
	if err == nil {
		l.c.appends.Add(1)
	}
	return s, err
}

func (readCloser) Close() error { return nil }
