package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/internal/jsonscan"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// feedReplyMargin is kept between the end of a change feed request's
// wait and its context's deadline (the API Lambda's invocation
// deadline), for the last read of the log and the reply.
const feedReplyMargin = time.Second

// getLog serves GET /v1/sheets/{sheet}/log: one page of the log's Query,
// and the change feed: with wait=N (N > 0) a page that would be empty
// because start is the log's next id is held until an entry exists there
// or N seconds have passed.
func (h *handler) getLog(rq *request) {
	sheet, err := rq.sheetParam()
	if err != nil {
		rq.fail(err)
		return
	}
	q, err := rq.queryParams("start", "end", "snapshotId", "wait")
	if err != nil {
		rq.fail(err)
		return
	}
	from := eventlog.FromStart
	switch s, ok := q["start"]; {
	case !ok || s == "start":
	case s == "snapshot":
		from = eventlog.FromSnapshot
	default:
		id, ok := parseID(s)
		if !ok {
			rq.fail(validation(`"start" must be a sequence id (decimal digits), "start" or "snapshot"; got %q`, truncate(s, 40)))
			return
		}
		from = eventlog.FromID(eventlog.SequenceID(id))
	}
	to := eventlog.ToEnd
	if s, ok := q["end"]; ok && s != "end" {
		id, ok := parseID(s)
		if !ok {
			rq.fail(validation(`"end" must be a sequence id (decimal digits) or "end"; got %q`, truncate(s, 40)))
			return
		}
		to = eventlog.ToID(eventlog.SequenceID(id))
	}
	var known *eventlog.SequenceID
	if s, ok := q["snapshotId"]; ok {
		id, ok := parseID(s)
		if !ok {
			rq.fail(validation(`"snapshotId" must be a sequence id (decimal digits); got %q`, truncate(s, 40)))
			return
		}
		known = eventlog.Known(eventlog.SequenceID(id))
	}
	var wait time.Duration
	if s, ok := q["wait"]; ok {
		n, ok := parseID(s)
		if !ok || n > uint64(MaxFeedWait/time.Second) {
			rq.fail(validation(`"wait" must be whole seconds from 0 to %d; got %q`, MaxFeedWait/time.Second, truncate(s, 40)))
			return
		}
		if _, ok := from.ID(); !ok {
			start, ok := q["start"]
			if !ok {
				start = "start"
			}
			rq.fail(validation(`"wait" needs "start" to be a sequence id (the id of the entry to wait for), not %q`, start))
			return
		}
		if e, ok := q["end"]; ok && e != "end" {
			rq.fail(validation(`"wait" needs "end" to be "end" (or absent), not %q`, truncate(e, 40)))
			return
		}
		wait = time.Duration(n) * time.Second
	}

	log, err := h.cfg.Logs.Log(sheet)
	if err != nil {
		rq.fail(err)
		return
	}
	var page eventlog.Page
	query := func() (bool, error) {
		page, err = log.Query(rq.ctx, from, to, known)
		return len(page.Entries) > 0, err
	}
	switch {
	case wait == 0:
		_, err = query()
	case h.parking != nil:
		rq.held = true
		// A page that is there already is sent from here; only a request
		// that has to wait is worth detaching. (Park reads the log once
		// more after listing the request, so that no append in between
		// is missed.)
		var found bool
		if found, err = query(); err != nil || found {
			break
		}
		if h.detachedWait(rq, sheet, wait, query, func(err error) { rq.writePage(page, err) }) {
			return
		}
		err = h.waitForEntries(rq, sheet, wait, query)
	default:
		rq.held = true
		err = h.waitForEntries(rq, sheet, wait, query)
	}
	rq.writePage(page, err)
}

// writePage sends a page of the log, or err.
func (rq *request) writePage(page eventlog.Page, err error) {
	if err != nil {
		rq.fail(err)
		return
	}
	size := 128
	for _, e := range page.Entries {
		size += len(e.Body) + 64
	}
	b := make([]byte, 0, size)
	b = append(b, `{"startSequenceId":`...)
	b = appendID(b, uint64(page.Start))
	b = append(b, `,"endSequenceId":`...)
	b = appendID(b, uint64(page.End))
	b = append(b, `,"isComplete":`...)
	if page.Complete {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	if page.LastSnapshot != nil {
		b = append(b, `,"lastSnapshot":`...)
		b = appendSnapshotRef(b, page.LastSnapshot)
	}
	b = append(b, `,"entries":[`...)
	for i, e := range page.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendEntry(b, e); err != nil {
			rq.fail(errs.Storage(err, "entry %d of the log is not a JSON object", uint64(page.Start)+uint64(i)))
			return
		}
	}
	b = append(b, "]}"...)
	rq.writeJSON(200, b)
}

// waitForEntries holds a change feed request in the feed until query
// finds entries, for at most wait (and Config.MaxWait), ending early
// enough before the request's own deadline to reply. The deadline is
// the only timer the request holds.
func (h *handler) waitForEntries(rq *request, sheet string, wait time.Duration, query func() (bool, error)) error {
	deadline := time.Now().Add(min(wait, h.maxWait))
	if d, ok := rq.ctx.Deadline(); ok && d.Add(-feedReplyMargin).Before(deadline) {
		deadline = d.Add(-feedReplyMargin)
	}
	ctx, cancel := context.WithDeadline(rq.ctx, deadline)
	defer cancel()
	return h.feed.Wait(ctx, sheet, query)
}

// detachedWait takes a change feed request off its goroutine (Config.Detach)
// and parks it in the feed until query finds entries, for at most wait
// (and Config.MaxWait); then reply writes the reply, which is sent, and
// the request is logged. It returns false, having done nothing, when the
// request cannot be detached.
func (h *handler) detachedWait(rq *request, sheet string, wait time.Duration, query func() (bool, error), reply func(error)) bool {
	w := rq.w
	if hw, ok := w.(headWriter); ok {
		w = hw.ResponseWriter // the detached reply drops a HEAD's body itself
	}
	rep, ok := h.cfg.Detach(w, rq.r)
	if !ok {
		return false
	}
	// The request's context ends when ServeHTTP returns, now; the wait
	// and the reading of the log go on without it. Of the request only
	// what its log record needs is kept while it waits (not its headers).
	ctx := context.WithoutCancel(rq.r.Context())
	rq.r = (&http.Request{Method: rq.r.Method}).WithContext(ctx)
	rq.ctx = ctx
	rq.w = rep
	rq.detached = true
	h.parking.Park(time.Now().Add(min(wait, h.maxWait)), sheet, query, func(err error) {
		// Logged before the reply is sent, as a request served in its
		// goroutine is: its client may act on the reply at once.
		defer func() {
			if p := recover(); p != nil {
				rq.recovered(p)
			}
			rq.logged()
			_ = rep.Finish()
		}()
		reply(err)
	})
	return true
}

func appendSnapshotRef(b []byte, s *eventlog.SnapshotRef) []byte {
	b = append(b, `{"sequenceId":`...)
	b = appendID(b, uint64(s.SequenceID))
	b = append(b, `,"blobId":`...)
	b = cell.AppendString(b, s.BlobID)
	return append(b, '}')
}

var errNotObject = errors.New("not a JSON object")

// appendEntry appends an entry as the API shows it: its body object with
// the metadata fields that are set merged in as members. Bodies never hold
// those keys (eventlog.ValidateEntry), so the merge is unambiguous.
func appendEntry(b []byte, e eventlog.Entry) ([]byte, error) {
	body := bytes.TrimSpace(e.Body)
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return b, errNotObject
	}
	if e.Snapshot == "" && e.History == "" && e.Pending == "" {
		return append(b, body...), nil
	}
	inner := bytes.TrimSpace(body[:len(body)-1])
	b = append(b, inner...)
	empty := len(inner) == 1 // just "{"
	for _, f := range [...]struct{ key, val string }{
		{`"snapshot":`, e.Snapshot}, {`"history":`, e.History}, {`"pending":`, e.Pending},
	} {
		if f.val == "" {
			continue
		}
		if !empty {
			b = append(b, ',')
		}
		empty = false
		b = append(b, f.key...)
		b = cell.AppendString(b, f.val)
	}
	return append(b, '}'), nil
}

// postLog serves POST /v1/sheets/{sheet}/log: an append of one entry
// ("entry") or of a batch ("entries", all or nothing) through the engine,
// which decides whether an entry requests a snapshot.
func (h *handler) postLog(rq *request) {
	body, err := rq.readBody()
	if err != nil {
		rq.fail(err)
		return
	}
	sheet, err := rq.sheetParam()
	if err != nil {
		rq.fail(err)
		return
	}
	if _, err := rq.queryParams(); err != nil {
		rq.fail(err)
		return
	}
	if err := checkJSONContentType(rq.r.Header.Get("Content-Type")); err != nil {
		rq.fail(err)
		return
	}
	req, err := decodeAppend(body)
	if err != nil {
		rq.fail(err)
		return
	}
	var res spreadsheet.AppendResult
	err = h.cfg.Engines.Do(rq.ctx, sheet, func(e *spreadsheet.Engine) error {
		var err error
		res, err = e.AppendBatch(rq.ctx, eventlog.SequenceID(req.sequenceID), req.entries, req.known)
		return err
	})
	if err != nil {
		rq.fail(err)
		return
	}
	b := append(make([]byte, 0, 128), `{"sequenceId":`...)
	b = appendID(b, uint64(res.SequenceID))
	if req.batch {
		b = append(b, `,"endSequenceId":`...)
		b = appendID(b, uint64(res.End))
	}
	if res.LastSnapshot != nil {
		b = append(b, `,"lastSnapshot":`...)
		b = appendSnapshotRef(b, res.LastSnapshot)
	}
	b = append(b, '}')
	rq.writeJSON(200, b)
}

// readBody reads the whole body, refusing it once it exceeds
// MaxBodyBytes whatever Content-Length said (chunked bodies have none).
func (rq *request) readBody() ([]byte, error) {
	if rq.r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(rq.r.Body, MaxBodyBytes+1))
	if len(b) > MaxBodyBytes {
		return nil, tooLarge()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, validation("could not read the request body: %v", err)
	}
	return b, nil
}

func checkJSONContentType(ct string) error {
	if ct == "" {
		return validation("the body must be sent with Content-Type: application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return validation("the body must be sent with Content-Type: application/json, not %q", truncate(ct, 80))
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return validation("Content-Type application/json takes no parameter but charset=utf-8; got %q", truncate(ct, 80))
		}
	}
	return nil
}

type appendRequest struct {
	sequenceID uint64
	known      *eventlog.SequenceID
	entries    []cell.Entry
	// batch is set when the entries came as "entries": the reply then
	// says where they end.
	batch bool
}

// decodeAppend decodes the body of POST log strictly: an object with
// "sequenceId", optional "snapshotId" and exactly one of "entry" and
// "entries", each once, and nothing else; every entry is decoded by
// cell.DecodeEntry in Strict mode.
func decodeAppend(body []byte) (appendRequest, error) {
	var req appendRequest
	// One pass over the body (jsonscan), keeping the members' values as
	// slices of it: a batch of 99 entries is not scanned three times.
	s := jsonscan.New(body)
	switch s.Peek() {
	case '{':
	case 0:
		return req, validation("the body is not valid JSON: unexpected end of input")
	default:
		if !jsonscan.Valid(body) {
			return req, validation("the body is not valid JSON")
		}
		return req, validation(`the body must be a JSON object {"sequenceId":..,"entry":{..}} or {"sequenceId":..,"entries":[..]}`)
	}
	var haveID, haveEntry, haveEntries, haveKnown bool
	var entryRaw, entriesRaw []byte
	err := s.Object(func(key string) error {
		raw, err := s.Value()
		if err != nil {
			return err
		}
		dup := false
		switch key {
		case "sequenceId":
			dup, haveID = haveID, true
			if req.sequenceID, err = decodeIDMember(key, raw); err != nil {
				return err
			}
		case "snapshotId":
			dup, haveKnown = haveKnown, true
			id, err := decodeIDMember(key, raw)
			if err != nil {
				return err
			}
			req.known = eventlog.Known(eventlog.SequenceID(id))
		case "entry":
			dup, haveEntry = haveEntry, true
			entryRaw = raw
		case "entries":
			dup, haveEntries = haveEntries, true
			entriesRaw = raw
		default:
			return validation(`unknown member %q in the body; it has "sequenceId", "entry" or "entries", and optionally "snapshotId"`, truncate(key, 80))
		}
		if dup {
			return validation("member %q appears twice in the body", key)
		}
		return nil
	})
	var se *jsonscan.SyntaxError
	switch {
	case errors.As(err, &se):
		return req, validation("the body is not valid JSON at byte %d: %s", se.Offset, se.Msg)
	case err != nil:
		return req, err
	}
	if s.End() != nil {
		return req, validation("the body has data after its JSON object")
	}
	switch {
	case !haveID:
		return req, validation(`the body needs "sequenceId": the id to append at`)
	case haveEntry && haveEntries:
		return req, validation(`the body has both "entry" and "entries"; send one entry as "entry" or a batch as "entries"`)
	case haveEntries:
		req.batch = true
		req.entries, err = decodeEntries(entriesRaw)
		return req, err
	case !haveEntry:
		return req, validation(`the body needs "entry" (the SetCellValueAndFormat entry to append) or "entries" (1 to %d of them)`, eventlog.MaxBatch)
	}
	e, err := cell.DecodeEntry(entryRaw, cell.Strict)
	req.entries = []cell.Entry{e}
	return req, err
}

// decodeEntries decodes the "entries" of a batch append: 1 to
// eventlog.MaxBatch entries, each as strict as "entry". The error about
// a bad one names its index.
func decodeEntries(raw []byte) ([]cell.Entry, error) {
	s := jsonscan.New(raw)
	items := make([][]byte, 0, eventlog.MaxBatch)
	err := s.Array(func() error {
		v, err := s.Value()
		items = append(items, v)
		return err
	})
	if err != nil {
		return nil, validation(`"entries" must be an array of 1 to %d SetCellValueAndFormat entries, got %s`, eventlog.MaxBatch, truncate(string(raw), 40))
	}
	if n := len(items); n == 0 || n > eventlog.MaxBatch {
		return nil, validation(`"entries" holds 1 to %d entries, not %d`, eventlog.MaxBatch, n)
	}
	out := make([]cell.Entry, len(items))
	for i, it := range items {
		e, err := cell.DecodeEntry(it, cell.Strict)
		if err != nil {
			var ve *errs.ValidationError
			if errors.As(err, &ve) {
				return nil, validation("entry %d of \"entries\": %s", i, ve.Message)
			}
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// decodeIDMember reads a sequence id given as a string of decimal digits
// or as a JSON integer (no sign, fraction or exponent).
func decodeIDMember(key string, raw json.RawMessage) (uint64, error) {
	bad := func() error {
		return validation("%q must be a sequence id: a string of decimal digits or a non-negative JSON integer without fraction or exponent, got %s",
			key, truncate(string(raw), 40))
	}
	if len(raw) == 0 {
		return 0, bad()
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, bad()
		}
	}
	id, ok := parseID(s)
	if !ok {
		return 0, bad()
	}
	return id, nil
}
