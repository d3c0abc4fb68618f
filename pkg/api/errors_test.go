package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

const token = "tok"

// errorFixture is a sheet s1 with three entries (next id 3), a blob "top"
// and a blob "dir/blob".
func errorFixture(t *testing.T) *fixture {
	f := newFixture(t, fixtureOptions{token: token, blobPage: 1, interval: 100})
	// The table's requests all come from one address and many of them
	// fail authentication on purpose.
	f.h.(*handler).failures.burst = 1 << 30
	for i := range 3 {
		f.post("s1", fmt.Sprint(i), setCell(i, i, `"value":"v"`))
	}
	ctx := context.Background()
	root, _ := f.blobs.Sheet("s1")
	dir, _ := root.GetDir(ctx, "dir")
	if err := root.WriteBlob(ctx, "top", []byte("t")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"blob", "blob2"} {
		if err := dir.WriteBlob(ctx, n, []byte("b")); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

type errCase struct {
	name   string
	method string
	target string
	body   string
	hdr    []string
	status int
	typ    string // "" for a success
}

func entryWith(members string) string {
	return `{"sequenceId":3,"entry":{"type":"SetCellValueAndFormat",` + members + `}}`
}

func envelope(members string) string { return `{` + members + `}` }

const goodEntry = `{"type":"SetCellValueAndFormat","row":1,"column":1,"value":1}`

func errorCases() []errCase {
	const log = "/v1/sheets/s1/log"
	big := strings.Repeat(" ", MaxBodyBytes+1)
	cases := []errCase{
		// Authentication comes first.
		{name: "no token", method: "GET", target: log, hdr: []string{"Authorization", ""}, status: 401, typ: "Unauthorized"},
		{name: "wrong token", method: "GET", target: log, hdr: []string{"Authorization", "Bearer nope"}, status: 401, typ: "Unauthorized"},
		{name: "basic auth", method: "GET", target: log, hdr: []string{"Authorization", "Basic dG9rOg=="}, status: 401, typ: "Unauthorized"},
		{name: "token with a trailing space", method: "GET", target: log, hdr: []string{"Authorization", "Bearer tok "}, status: 401, typ: "Unauthorized"},
		{name: "bare token", method: "GET", target: log, hdr: []string{"Authorization", "tok"}, status: 401, typ: "Unauthorized"},
		{name: "lower-case scheme", method: "GET", target: log, hdr: []string{"Authorization", "bearer tok"}, status: 200},
		{name: "no token, unknown /v1 route", method: "GET", target: "/v1/nothing", hdr: []string{"Authorization", ""}, status: 401, typ: "Unauthorized"},
		{name: "no token, /v1", method: "GET", target: "/v1", hdr: []string{"Authorization", ""}, status: 401, typ: "Unauthorized"},
		{name: "no token, big body", method: "POST", target: log, body: big, hdr: []string{"Authorization", ""}, status: 401, typ: "Unauthorized"},
		{name: "no token, openapi", method: "GET", target: "/v1/openapi.yaml", hdr: []string{"Authorization", ""}, status: 401, typ: "Unauthorized"},
		{name: "healthz needs no token", method: "GET", target: "/healthz", hdr: []string{"Authorization", ""}, status: 200},
		{name: "no token, unknown route outside /v1", method: "GET", target: "/nothing", hdr: []string{"Authorization", ""}, status: 404, typ: "NotFound"},

		// Body size comes before validation.
		{name: "body over 64 KiB", method: "POST", target: log, body: big, status: 413, typ: "PayloadTooLarge"},
		{name: "body over 64 KiB, bad sheet", method: "POST", target: "/v1/sheets/a%20b/log", body: big, status: 413, typ: "PayloadTooLarge"},
		{name: "body over 64 KiB, bad content type", method: "POST", target: log, body: big, hdr: []string{"Content-Type", "text/plain"}, status: 413, typ: "PayloadTooLarge"},
		{name: "body over 64 KiB on a GET", method: "GET", target: "/v1/sheets/s1", body: big, status: 413, typ: "PayloadTooLarge"},
		{name: "body over 64 KiB on no route", method: "PUT", target: "/v1/x", body: big, status: 413, typ: "PayloadTooLarge"},

		// Routes and methods.
		{name: "unknown route", method: "GET", target: "/nothing", status: 404, typ: "NotFound"},
		{name: "root", method: "GET", target: "/", status: 404, typ: "NotFound"},
		{name: "sheets", method: "GET", target: "/v1/sheets", status: 404, typ: "NotFound"},
		{name: "log with a slash", method: "GET", target: log + "/", status: 404, typ: "NotFound"},
		{name: "log/extra", method: "GET", target: log + "/extra", status: 404, typ: "NotFound"},
		{name: "blobs without slash", method: "GET", target: "/v1/sheets/s1/blobs", status: 404, typ: "NotFound"},
		{name: "unknown sheet resource", method: "GET", target: "/v1/sheets/s1/other", status: 404, typ: "NotFound"},
		{name: "upper-case V1", method: "GET", target: "/V1/sheets/s1", status: 404, typ: "NotFound"},
		{name: "double slash", method: "GET", target: "//v1/sheets/s1", status: 404, typ: "NotFound"},
		{name: "DELETE log", method: "DELETE", target: log, status: 405, typ: "MethodNotAllowed"},
		{name: "PUT status", method: "PUT", target: "/v1/sheets/s1", status: 405, typ: "MethodNotAllowed"},
		{name: "POST healthz", method: "POST", target: "/healthz", body: "{}", status: 405, typ: "MethodNotAllowed"},
		{name: "POST cells", method: "POST", target: "/v1/sheets/s1/cells?range=A1", body: "{}", status: 405, typ: "MethodNotAllowed"},
		{name: "PATCH blob", method: "PATCH", target: "/v1/sheets/s1/blobs/top", status: 405, typ: "MethodNotAllowed"},
		{name: "POST openapi", method: "POST", target: "/v1/openapi.yaml", status: 405, typ: "MethodNotAllowed"},
		{name: "lower-case method", method: "get", target: log, status: 405, typ: "MethodNotAllowed"},

		// Sheet ids.
		{name: "sheet with a space", method: "GET", target: "/v1/sheets/a%20b", status: 400, typ: "ValidationError"},
		{name: "sheet ..", method: "GET", target: "/v1/sheets/../log", status: 400, typ: "ValidationError"},
		{name: "sheet .", method: "GET", target: "/v1/sheets/.", status: 400, typ: "ValidationError"},
		{name: "sheet %2E%2E", method: "GET", target: "/v1/sheets/%2E%2E/log", status: 400, typ: "ValidationError"},
		{name: "empty sheet", method: "GET", target: "/v1/sheets//log", status: 400, typ: "ValidationError"},
		{name: "empty sheet, status", method: "GET", target: "/v1/sheets/", status: 400, typ: "ValidationError"},
		{name: "sheet with %2F", method: "GET", target: "/v1/sheets/a%2Fb/cells?range=A1", status: 400, typ: "ValidationError"},
		{name: "sheet of 65 characters", method: "GET", target: "/v1/sheets/" + strings.Repeat("a", 65), status: 400, typ: "ValidationError"},
		{name: "sheet not ASCII", method: "GET", target: "/v1/sheets/%C3%A9/blobs/", status: 400, typ: "ValidationError"},
		{name: "sheet on POST", method: "POST", target: "/v1/sheets/a:b/log", body: `{"sequenceId":0,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "sheet of 64 characters", method: "GET", target: "/v1/sheets/" + strings.Repeat("a", 64), status: 200},
		{name: "sheet ...", method: "GET", target: "/v1/sheets/...", status: 200},

		// GET log parameters.
		{name: "start=abc", method: "GET", target: log + "?start=abc", status: 400, typ: "ValidationError"},
		{name: "start=-1", method: "GET", target: log + "?start=-1", status: 400, typ: "ValidationError"},
		{name: "start=1.5", method: "GET", target: log + "?start=1.5", status: 400, typ: "ValidationError"},
		{name: "start empty", method: "GET", target: log + "?start=", status: 400, typ: "ValidationError"},
		{name: "start=+1", method: "GET", target: log + "?start=%2B1", status: 400, typ: "ValidationError"},
		{name: "start=END", method: "GET", target: log + "?start=end", status: 400, typ: "ValidationError"},
		{name: "start overflows", method: "GET", target: log + "?start=18446744073709551616", status: 400, typ: "ValidationError"},
		{name: "end=x", method: "GET", target: log + "?end=x", status: 400, typ: "ValidationError"},
		{name: "end=start", method: "GET", target: log + "?end=start", status: 400, typ: "ValidationError"},
		{name: "snapshotId=x", method: "GET", target: log + "?snapshotId=x", status: 400, typ: "ValidationError"},
		{name: "snapshotId empty", method: "GET", target: log + "?snapshotId=", status: 400, typ: "ValidationError"},
		{name: "unknown parameter", method: "GET", target: log + "?startt=1", status: 400, typ: "ValidationError"},
		{name: "repeated parameter", method: "GET", target: log + "?start=1&start=2", status: 400, typ: "ValidationError"},
		{name: "bad escape in query", method: "GET", target: log + "?start=%zz", status: 400, typ: "ValidationError"},
		{name: "semicolon in query", method: "GET", target: log + "?start=1;end=2", status: 400, typ: "ValidationError"},
		{name: "start beyond the log", method: "GET", target: log + "?start=4", status: 416, typ: "RangeError"},
		{name: "start far beyond the log", method: "GET", target: log + "?start=18446744073709551615", status: 416, typ: "RangeError"},
		{name: "start at the next id", method: "GET", target: log + "?start=3&end=end&snapshotId=0", status: 200},

		{name: "wait beyond the log", method: "GET", target: log + "?start=4&wait=20", status: 416, typ: "RangeError"},
		{name: "wait=0", method: "GET", target: log + "?start=3&wait=0", status: 200},
		{name: "wait=020 on entries", method: "GET", target: log + "?start=0&wait=020&end=end", status: 200},
		{name: "wait=20 on entries", method: "GET", target: log + "?start=2&wait=20&snapshotId=0", status: 200},
		{name: "end beyond the log", method: "GET", target: log + "?start=0&end=99", status: 200},

		// POST log: the envelope.
		{name: "empty body", method: "POST", target: log, body: "", status: 400, typ: "ValidationError"},
		{name: "truncated JSON", method: "POST", target: log, body: `{"sequenceId":3`, status: 400, typ: "ValidationError"},
		{name: "not JSON", method: "POST", target: log, body: `sequenceId=3`, status: 400, typ: "ValidationError"},
		{name: "array", method: "POST", target: log, body: `[]`, status: 400, typ: "ValidationError"},
		{name: "null", method: "POST", target: log, body: `null`, status: 400, typ: "ValidationError"},
		{name: "string", method: "POST", target: log, body: `"x"`, status: 400, typ: "ValidationError"},
		{name: "empty object", method: "POST", target: log, body: `{}`, status: 400, typ: "ValidationError"},
		{name: "trailing comma", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `,}`, status: 400, typ: "ValidationError"},
		{name: "no entry", method: "POST", target: log, body: `{"sequenceId":3}`, status: 400, typ: "ValidationError"},
		{name: "no sequenceId", method: "POST", target: log, body: `{"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "unknown envelope member", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `,"x":1}`, status: 400, typ: "ValidationError"},
		{name: "envelope member in another case", method: "POST", target: log, body: `{"SequenceId":3,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "pending in the envelope", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `,"pending":"snapshot"}`, status: 400, typ: "ValidationError"},
		{name: "duplicate sequenceId", method: "POST", target: log, body: `{"sequenceId":3,"sequenceId":3,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "duplicate entry", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "duplicate snapshotId", method: "POST", target: log, body: `{"sequenceId":3,"snapshotId":0,"snapshotId":0,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},
		{name: "trailing data", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `} x`, status: 400, typ: "ValidationError"},
		{name: "two objects", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}{}`, status: 400, typ: "ValidationError"},
		{name: "query parameter on POST", method: "POST", target: log + "?start=1", body: `{"sequenceId":3,"entry":` + goodEntry + `}`, status: 400, typ: "ValidationError"},

		// Content types.
		{name: "text/plain", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "text/plain"}, status: 400, typ: "ValidationError"},
		{name: "no content type", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", ""}, status: 400, typ: "ValidationError"},
		{name: "form content type", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 400, typ: "ValidationError"},
		{name: "latin1 charset", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "application/json; charset=latin1"}, status: 400, typ: "ValidationError"},
		{name: "unknown content type parameter", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "application/json; v=2"}, status: 400, typ: "ValidationError"},
		{name: "malformed content type", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "application/json;;"}, status: 400, typ: "ValidationError"},
		{name: "json suffix type", method: "POST", target: log, body: `{"sequenceId":3,"entry":` + goodEntry + `}`, hdr: []string{"Content-Type", "application/jsonx"}, status: 400, typ: "ValidationError"},

		// Conflicts.
		{name: "id above next", method: "POST", target: log, body: `{"sequenceId":7,"entry":` + goodEntry + `}`, status: 409, typ: "ConflictError"},
		{name: "id below next", method: "POST", target: log, body: `{"sequenceId":"0","entry":` + goodEntry + `}`, status: 409, typ: "ConflictError"},
		{name: "id just below next", method: "POST", target: log, body: `{"sequenceId":2,"snapshotId":"0","entry":` + goodEntry + `}`, status: 409, typ: "ConflictError"},
		{name: "largest id", method: "POST", target: log, body: `{"sequenceId":"18446744073709551615","entry":` + goodEntry + `}`, status: 409, typ: "ConflictError"},
	}

	// The change feed: wait is whole seconds 0 to 20, with a numeric
	// start and no end but "end".
	for _, q := range []string{"start=3&wait=21", "start=3&wait=-1", "start=3&wait=1.5", "start=3&wait=1e1", "start=3&wait=%2B1",
		"start=3&wait=", "start=3&wait=x", "start=3&wait=99999999999999999999999", "start=3&wait=1&wait=1",
		"wait=1", "wait=0", "start=start&wait=1", "start=snapshot&wait=0", "start=3&end=4&wait=1", "start=0&end=3&wait=0",
		"start=0&end=start&wait=1"} {
		cases = append(cases, errCase{name: "feed: " + q, method: "GET", target: log + "?" + q, status: 400, typ: "ValidationError"})
	}

	// Sequence id forms that are not a string of digits or a plain
	// non-negative integer.
	for _, v := range []string{`-1`, `3.0`, `3e0`, `0.3e1`, `"3.0"`, `""`, `" 3"`, `"3 "`, `"+3"`, `"-3"`, `"0x3"`, `"３"`,
		`null`, `true`, `{}`, `[]`, `[3]`, `"18446744073709551616"`, `18446744073709551616`, `1e400`} {
		cases = append(cases,
			errCase{name: "sequenceId " + v, method: "POST", target: log, body: envelope(`"sequenceId":` + v + `,"entry":` + goodEntry), status: 400, typ: "ValidationError"},
			errCase{name: "snapshotId " + v, method: "POST", target: log, body: envelope(`"sequenceId":3,"snapshotId":` + v + `,"entry":` + goodEntry), status: 400, typ: "ValidationError"})
	}

	// The entry, validated strictly.
	for _, e := range []struct{ name, members string }{
		{"row as a string", `"row":"1","column":0`},
		{"row 1.0", `"row":1.0,"column":0`},
		{"row 1e2", `"row":1e2,"column":0`},
		{"row 1E2", `"row":1E2,"column":0`},
		{"row 1.5", `"row":1.5,"column":0`},
		{"row -1", `"row":-1,"column":0`},
		{"row -0", `"row":-0,"column":0`},
		{"row 2^31", `"row":2147483648,"column":0`},
		{"row 2^64", `"row":18446744073709551616,"column":0`},
		{"row null", `"row":null,"column":0`},
		{"row true", `"row":true,"column":0`},
		{"row twice", `"row":1,"row":1,"column":0`},
		{"no row", `"column":0`},
		{"no column", `"row":0`},
		{"column 1e0", `"row":0,"column":1e0`},
		{"column 2^31", `"row":0,"column":2147483648`},
		{"column -5", `"row":0,"column":-5`},
		{"column [0]", `"row":0,"column":[0]`},
		{"unknown member", `"row":0,"column":0,"foo":1`},
		{"pending in the entry", `"row":0,"column":0,"pending":"snapshot"`},
		{"snapshot in the entry", `"row":0,"column":0,"snapshot":"1"`},
		{"history in the entry", `"row":0,"column":0,"history":"h"`},
		{"pending null in the entry", `"row":0,"column":0,"pending":null`},
		{"value twice", `"row":0,"column":0,"value":1,"value":2`},
		{"value 1e999", `"row":0,"column":0,"value":1e999`},
		{"value -1e999", `"row":0,"column":0,"value":-1e999`},
		{"value NaN", `"row":0,"column":0,"value":NaN`},
		{"value Infinity", `"row":0,"column":0,"value":Infinity`},
		{"value array", `"row":0,"column":0,"value":[1]`},
		{"value object", `"row":0,"column":0,"value":{}`},
		{"value 01", `"row":0,"column":0,"value":01`},
		{"value nested arrays", `"row":0,"column":0,"value":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)},
		{"CellError unknown code", `"row":0,"column":0,"value":{"type":"CellError","value":"#BOGUS!"}`},
		{"CellError extra member", `"row":0,"column":0,"value":{"type":"CellError","value":"#N/A","x":1}`},
		{"CellError without value", `"row":0,"column":0,"value":{"type":"CellError"}`},
		{"CellError without type", `"row":0,"column":0,"value":{"value":"#N/A"}`},
		{"CellError other type", `"row":0,"column":0,"value":{"type":"Error","value":"#N/A"}`},
		{"CellError numeric code", `"row":0,"column":0,"value":{"type":"CellError","value":7}`},
		{"CellError code twice", `"row":0,"column":0,"value":{"type":"CellError","value":"#N/A","value":"#N/A"}`},
		{"format number", `"row":0,"column":0,"format":5`},
		{"format true", `"row":0,"column":0,"format":true`},
		{"format object", `"row":0,"column":0,"format":{}`},
		{"format twice", `"row":0,"column":0,"format":"a","format":"b"`},
	} {
		cases = append(cases, errCase{name: "entry " + e.name, method: "POST", target: log, body: entryWith(e.members), status: 400, typ: "ValidationError"})
	}
	for _, e := range []struct{ name, entry string }{
		{"type Other", `{"type":"Other","row":0,"column":0}`},
		{"no type", `{"row":0,"column":0}`},
		{"type 5", `{"type":5,"row":0,"column":0}`},
		{"type twice", `{"type":"SetCellValueAndFormat","type":"SetCellValueAndFormat","row":0,"column":0}`},
		{"entry array", `[]`},
		{"entry string", `"SetCellValueAndFormat"`},
		{"entry null", `null`},
		{"entry truncated", `{"type":"SetCellValueAndFormat","row":0,"column":0`},
	} {
		cases = append(cases, errCase{name: "entry " + e.name, method: "POST", target: log, body: `{"sequenceId":3,"entry":` + e.entry + `}`, status: 400, typ: "ValidationError"})
	}

	// Batches: exactly one of "entry" and "entries", 1 to 99 entries,
	// each as strict as "entry"; one bad entry refuses them all.
	batch := func(n int, edit func(i int) string) string {
		es := make([]string, n)
		for i := range es {
			es[i] = goodEntry
			if edit != nil {
				es[i] = edit(i)
			}
		}
		return `{"sequenceId":3,"entries":[` + strings.Join(es, ",") + `]}`
	}
	badAt57 := func(i int) string {
		if i == 57 {
			return `{"type":"SetCellValueAndFormat","row":1.5,"column":0}`
		}
		return goodEntry
	}
	for _, c := range []struct{ name, body string }{
		{"both entry and entries", `{"sequenceId":3,"entry":` + goodEntry + `,"entries":[` + goodEntry + `]}`},
		{"entries and entry", `{"sequenceId":3,"entries":[` + goodEntry + `],"entry":` + goodEntry + `}`},
		{"neither entry nor entries", `{"sequenceId":3,"snapshotId":0}`},
		{"entries of 0", batch(0, nil)},
		{"entries of 100", batch(100, nil)},
		{"entries of 1000", batch(1000, nil)},
		{"bad entry at 57", batch(60, badAt57)},
		{"bad last entry", batch(99, func(i int) string {
			if i == 98 {
				return `{"type":"SetCellValueAndFormat","row":0,"column":0,"pending":"snapshot"}`
			}
			return goodEntry
		})},
		{"entry of another type in a batch", batch(2, func(i int) string { return `{"type":"Other","row":0,"column":` + fmt.Sprint(i) + `}` })},
		{"entries null", `{"sequenceId":3,"entries":null}`},
		{"entries an object", `{"sequenceId":3,"entries":` + goodEntry + `}`},
		{"entries a string", `{"sequenceId":3,"entries":"x"}`},
		{"entries of numbers", `{"sequenceId":3,"entries":[1,2]}`},
		{"entries of arrays", `{"sequenceId":3,"entries":[[` + goodEntry + `]]}`},
		{"entries twice", `{"sequenceId":3,"entries":[` + goodEntry + `],"entries":[` + goodEntry + `]}`},
		{"entries without sequenceId", `{"entries":[` + goodEntry + `]}`},
		{"entries with a null entry", `{"sequenceId":3,"entries":[` + goodEntry + `,null]}`},
	} {
		cases = append(cases, errCase{name: "batch: " + c.name, method: "POST", target: log, body: c.body, status: 400, typ: "ValidationError"})
	}
	cases = append(cases,
		errCase{name: "batch: conflict", method: "POST", target: log, body: `{"sequenceId":2,"entries":[` + goodEntry + `]}`, status: 409, typ: "ConflictError"},
		errCase{name: "batch: over 64 KiB", method: "POST", target: log, body: batch(99, func(int) string {
			return `{"type":"SetCellValueAndFormat","row":0,"column":0,"value":"` + strings.Repeat("x", 700) + `"}`
		}), status: 413, typ: "PayloadTooLarge"})

	// Blobs.
	cases = append(cases, []errCase{
		{name: "missing blob", method: "GET", target: "/v1/sheets/s1/blobs/missing", status: 404, typ: "StorageError"},
		{name: "missing blob in a missing dir", method: "GET", target: "/v1/sheets/s1/blobs/no/such/blob", status: 404, typ: "StorageError"},
		{name: "read a directory", method: "GET", target: "/v1/sheets/s1/blobs/dir", status: 409, typ: "BlobWrongKindError"},
		{name: "list a blob", method: "GET", target: "/v1/sheets/s1/blobs/top/", status: 409, typ: "BlobWrongKindError"},
		{name: "read below a blob", method: "GET", target: "/v1/sheets/s1/blobs/top/x", status: 409, typ: "BlobWrongKindError"},
		{name: "%2F in a name", method: "GET", target: "/v1/sheets/s1/blobs/dir%2Fblob", status: 400, typ: "InvalidBlobNameError"},
		{name: "%2f in a listed name", method: "GET", target: "/v1/sheets/s1/blobs/a%2fb/", status: 400, typ: "InvalidBlobNameError"},
		{name: "name ..", method: "GET", target: "/v1/sheets/s1/blobs/../top", status: 400, typ: "InvalidBlobNameError"},
		{name: "name .", method: "GET", target: "/v1/sheets/s1/blobs/./top", status: 400, typ: "InvalidBlobNameError"},
		{name: "name %2E%2E", method: "GET", target: "/v1/sheets/s1/blobs/%2E%2E/", status: 400, typ: "InvalidBlobNameError"},
		{name: "empty name", method: "GET", target: "/v1/sheets/s1/blobs/dir//blob", status: 400, typ: "InvalidBlobNameError"},
		{name: "empty listed name", method: "GET", target: "/v1/sheets/s1/blobs//", status: 400, typ: "InvalidBlobNameError"},
		{name: "control character", method: "GET", target: "/v1/sheets/s1/blobs/a%01", status: 400, typ: "InvalidBlobNameError"},
		{name: "NUL", method: "GET", target: "/v1/sheets/s1/blobs/a%00b/", status: 400, typ: "InvalidBlobNameError"},
		{name: "invalid UTF-8", method: "GET", target: "/v1/sheets/s1/blobs/%FF", status: 400, typ: "InvalidBlobNameError"},
		{name: "name of 101 characters", method: "GET", target: "/v1/sheets/s1/blobs/" + strings.Repeat("n", 101), status: 400, typ: "InvalidBlobNameError"},
		{name: "name of 100 characters", method: "GET", target: "/v1/sheets/s1/blobs/" + strings.Repeat("n", 100), status: 404, typ: "StorageError"},
		{name: "too many names", method: "GET", target: "/v1/sheets/s1/blobs/" + strings.Repeat("d/", MaxPathSegments) + "b", status: 400, typ: "InvalidBlobNameError"},
		{name: "bogus continuation", method: "GET", target: "/v1/sheets/s1/blobs/?continuation=bogus", status: 400, typ: "NoContinuationError"},
		{name: "unknown listing parameter", method: "GET", target: "/v1/sheets/s1/blobs/?cont=x", status: 400, typ: "ValidationError"},
		{name: "parameter on a read", method: "GET", target: "/v1/sheets/s1/blobs/top?continuation=x", status: 400, typ: "ValidationError"},
		{name: "read a blob", method: "GET", target: "/v1/sheets/s1/blobs/dir/blob", status: 200},
		{name: "empty continuation", method: "GET", target: "/v1/sheets/s1/blobs/dir/?continuation=", status: 200},

		// Cells.
		{name: "no range", method: "GET", target: "/v1/sheets/s1/cells", status: 400, typ: "ValidationError"},
		{name: "empty range", method: "GET", target: "/v1/sheets/s1/cells?range=", status: 400, typ: "ValidationError"},
		{name: "lower-case range", method: "GET", target: "/v1/sheets/s1/cells?range=a1", status: 400, typ: "ValidationError"},
		{name: "row 0", method: "GET", target: "/v1/sheets/s1/cells?range=A0", status: 400, typ: "ValidationError"},
		{name: "open range", method: "GET", target: "/v1/sheets/s1/cells?range=A1:", status: 400, typ: "ValidationError"},
		{name: "range :A1", method: "GET", target: "/v1/sheets/s1/cells?range=:A1", status: 400, typ: "ValidationError"},
		{name: "range 1A", method: "GET", target: "/v1/sheets/s1/cells?range=1A", status: 400, typ: "ValidationError"},
		{name: "three corners", method: "GET", target: "/v1/sheets/s1/cells?range=A1:B2:C3", status: 400, typ: "ValidationError"},
		{name: "absolute reference", method: "GET", target: "/v1/sheets/s1/cells?range=$A$1", status: 400, typ: "ValidationError"},
		{name: "10100 cells", method: "GET", target: "/v1/sheets/s1/cells?range=A1:CV101", status: 400, typ: "ValidationError"},
		{name: "a whole column", method: "GET", target: "/v1/sheets/s1/cells?range=A1:A2147483648", status: 400, typ: "ValidationError"},
		{name: "beyond the last row", method: "GET", target: "/v1/sheets/s1/cells?range=A2147483649", status: 400, typ: "ValidationError"},
		{name: "beyond uint32", method: "GET", target: "/v1/sheets/s1/cells?range=A99999999999", status: 400, typ: "ValidationError"},
		{name: "beyond the last column", method: "GET", target: "/v1/sheets/s1/cells?range=FXSHRXY1", status: 400, typ: "ValidationError"},
		{name: "range twice", method: "GET", target: "/v1/sheets/s1/cells?range=A1&range=A2", status: 400, typ: "ValidationError"},
		{name: "range and more", method: "GET", target: "/v1/sheets/s1/cells?range=A1&x=1", status: 400, typ: "ValidationError"},
		{name: "last cell", method: "GET", target: "/v1/sheets/s1/cells?range=FXSHRXX2147483648", status: 200},

		// Parameters elsewhere.
		{name: "parameter on status", method: "GET", target: "/v1/sheets/s1?x=1", status: 400, typ: "ValidationError"},
		{name: "parameter on healthz", method: "GET", target: "/healthz?verbose", status: 400, typ: "ValidationError"},
		{name: "parameter on openapi", method: "GET", target: "/v1/openapi.yaml?v=1", status: 400, typ: "ValidationError"},
	}...)
	return cases
}

// TestErrorTable sends every malformed request of the table and checks
// the status and type (and, through the fixture, the error body shape and
// the OpenAPI document).
func TestErrorTable(t *testing.T) {
	f := errorFixture(t)
	seen := map[string]bool{}
	for _, c := range errorCases() {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			r := f.do(c.method, c.target, c.body, c.hdr...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.typ != "" {
				if got := r.json(t)["type"]; got != c.typ {
					t.Fatalf("type %v, want %s: %s", got, c.typ, r.body)
				}
			}
		})
	}
	f.t = t
	// Nothing of the above was appended.
	if end := f.get("/v1/sheets/s1")["endSequenceId"]; end != "3" {
		t.Fatalf("the log's end is %v after the error cases", end)
	}
}

func TestErrorDetails(t *testing.T) {
	f := errorFixture(t)
	r := f.do("POST", "/v1/sheets/s1/log", `{"sequenceId":"9","entry":`+goodEntry+`}`)
	jsonEq(t, r.json(t)["nextSequenceId"], `"3"`)
	r = f.do("DELETE", "/v1/sheets/s1/log", "")
	if r.header.Get("Allow") != "GET, HEAD, POST, OPTIONS" {
		t.Fatalf("Allow: %q", r.header.Get("Allow"))
	}
	r = f.do("PUT", "/healthz", "")
	if r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("Allow: %q", r.header.Get("Allow"))
	}
	r = f.do("GET", "/v1/sheets/s1/blobs/missing", "")
	jsonEq(t, r.json(t)["statusCode"], `404`)
	r = f.do("GET", "/v1/sheets/s1/log", "", "Authorization", "")
	if r.header.Get("WWW-Authenticate") != `Bearer realm="sheetlog"` {
		t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	// A continuation token of another directory.
	p := f.get("/v1/sheets/s1/blobs/dir/")
	tok, ok := p["continuation"].(string)
	if !ok {
		t.Fatalf("no continuation with page size 1: %v", p)
	}
	r = f.do("GET", "/v1/sheets/s1/blobs/?continuation="+urlQueryEscape(tok), "")
	if r.status != 400 || r.json(t)["type"] != "NoContinuationError" {
		t.Fatalf("foreign token: %d %s", r.status, r.body)
	}
	// Exactly 64 KiB is accepted.
	body := `{"sequenceId":3,"entry":` + goodEntry + `}`
	body += strings.Repeat(" ", MaxBodyBytes-len(body))
	if r := f.do("POST", "/v1/sheets/s1/log", body); r.status != 200 {
		t.Fatalf("64 KiB body: %d %s", r.status, r.body)
	}
	// The largest coordinates are accepted, a charset too.
	r = f.do("POST", "/v1/sheets/s1/log", `{"sequenceId":4,"entry":{"type":"SetCellValueAndFormat","row":2147483647,"column":2147483647,"format":null}}`,
		"Content-Type", "application/json; charset=UTF-8")
	if r.status != 200 {
		t.Fatalf("largest coordinates: %d %s", r.status, r.body)
	}
	jsonEq(t, f.get("/v1/sheets/s1/cells?range=FXSHRXX2147483648")["rowCount"], `2147483648`)
}

// brokenLogs and brokenBlobs fail every call, as a store whose backend is
// down does.
type brokenLogs struct{ err error }

func (b brokenLogs) Log(string) (eventlog.EventLog, error) { return brokenLog(b), nil }

type brokenLog struct{ err error }

func (b brokenLog) AddEntry(context.Context, eventlog.SequenceID, eventlog.Entry, *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return nil, b.err
}
func (b brokenLog) AddEntries(context.Context, eventlog.SequenceID, []eventlog.Entry, *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return nil, b.err
}
func (b brokenLog) SetMetadata(context.Context, eventlog.SequenceID, eventlog.MetadataUpdate) (bool, error) {
	return false, b.err
}
func (b brokenLog) Query(context.Context, eventlog.From, eventlog.To, *eventlog.SequenceID) (eventlog.Page, error) {
	return eventlog.Page{}, b.err
}
func (b brokenLog) Truncate(context.Context, eventlog.SequenceID) error { return b.err }

type brokenBlobs struct{ err error }

func (b brokenBlobs) Sheet(string) (blobstore.BlobDir, error) { return nil, b.err }

func TestStoreFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"StorageError", errs.Storage(errors.New("connection reset by 10.1.2.3"), "reading the log"), 503},
		{"throttled", &errs.StorageError{StatusCode: 429, Message: "slow down"}, 429},
		{"untyped", errors.New("something at 10.1.2.3 broke"), 503},
		{"wrapped", fmt.Errorf("context: %w", errs.Storage(nil, "disk on fire")), 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logged bytes.Buffer
			f := newFixture(t, fixtureOptions{logs: brokenLogs{c.err}, blobs: brokenBlobs{c.err}})
			f.h, _ = New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines,
				Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
			for _, rq := range [][2]string{
				{"GET", "/v1/sheets/s1/log"},
				{"POST", "/v1/sheets/s1/log"},
				{"GET", "/v1/sheets/s1/cells?range=A1"},
				{"GET", "/v1/sheets/s1"},
				{"GET", "/v1/sheets/s1/blobs/"},
				{"GET", "/v1/sheets/s1/blobs/a/b"},
			} {
				body := ""
				if rq[0] == "POST" {
					body = `{"sequenceId":0,"entry":` + goodEntry + `}`
				}
				r := f.do(rq[0], rq[1], body)
				m := r.json(t)
				if r.status != c.want || m["type"] != "StorageError" {
					t.Fatalf("%s %s: %d %s", rq[0], rq[1], r.status, r.body)
				}
				if strings.Contains(string(r.body), "10.1.2.3") {
					t.Fatalf("the cause leaked into the reply: %s", r.body)
				}
			}
			if c.want >= 500 && !strings.Contains(logged.String(), "10.1.2.3") && c.name != "wrapped" {
				t.Fatalf("the cause is not logged: %s", logged.String())
			}
		})
	}
}

func TestFactoryFailure(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.engines = enginecache.New(func(string) (*spreadsheet.Engine, error) {
		return nil, errs.Storage(nil, "cannot open the sheet")
	}, enginecache.Options{})
	f.h, _ = New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines})
	r := f.do("GET", "/v1/sheets/s1", "")
	if r.status != 503 {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// panickyBlobs panics, standing for a bug below the handler.
type panickyBlobs struct{}

func (panickyBlobs) Sheet(string) (blobstore.BlobDir, error) { panic("bug") }

func TestPanicIsRecovered(t *testing.T) {
	var logged bytes.Buffer
	f := newFixture(t, fixtureOptions{})
	h, _ := New(Config{Logs: f.logs, Blobs: panickyBlobs{}, Engines: f.engines,
		Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/sheets/s1/blobs/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"type":"InternalError"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(logged.String(), "panic serving a request") || !strings.Contains(logged.String(), `"status":500`) {
		t.Fatalf("log: %s", logged.String())
	}
}

func TestRequestLog(t *testing.T) {
	var logged bytes.Buffer
	f := newFixture(t, fixtureOptions{})
	f.h, _ = New(Config{Logs: f.logs, Blobs: f.blobs, Engines: f.engines,
		Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	f.do("GET", "/v1/sheets/s1/log?start=9", "")
	var rec map[string]any
	if err := json.Unmarshal(logged.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, logged.String())
	}
	for k, want := range map[string]any{"msg": "request", "method": "GET", "route": "/v1/sheets/{sheet}/log",
		"status": float64(416), "sheet": "s1", "error": "RangeError"} {
		if rec[k] != want {
			t.Fatalf("%s = %v, want %v in %v", k, rec[k], want, rec)
		}
	}
	if _, ok := rec["duration"]; !ok {
		t.Fatalf("no duration: %v", rec)
	}
}

func TestNewRequiresStores(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, cfg := range []Config{
		{Blobs: f.blobs, Engines: f.engines},
		{Logs: f.logs, Engines: f.engines},
		{Logs: f.logs, Blobs: f.blobs},
	} {
		if _, err := New(cfg); err == nil {
			t.Fatalf("New(%+v) succeeded", cfg)
		}
	}
}
