package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Log is the event log of one sheet over the API: an eventlog.EventLog
// that reads and appends, and refuses metadata writes and truncation
// (ErrReadOnly).
type Log struct {
	c     *Client
	sheet string
}

var _ eventlog.EventLog = (*Log)(nil)

// Log returns the event log of sheet. The sheet id is checked on each
// call (a *errs.ValidationError).
func (c *Client) Log(sheet string) *Log { return &Log{c: c, sheet: sheet} }

// Sheet is the log's sheet id.
func (l *Log) Sheet() string { return l.sheet }

// LogStore is the client as an eventlog.Store.
func (c *Client) LogStore() eventlog.Store { return logStore{c} }

type logStore struct{ c *Client }

func (s logStore) Log(sheet string) (eventlog.EventLog, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	return s.c.Log(sheet), nil
}

// wirePage is the JSON of GET log.
type wirePage struct {
	Start        json.RawMessage   `json:"startSequenceId"`
	End          json.RawMessage   `json:"endSequenceId"`
	Complete     bool              `json:"isComplete"`
	LastSnapshot *wireSnapshot     `json:"lastSnapshot"`
	Entries      []json.RawMessage `json:"entries"`
}

type wireSnapshot struct {
	SequenceID json.RawMessage `json:"sequenceId"`
	BlobID     string          `json:"blobId"`
}

func (w *wireSnapshot) ref() (*eventlog.SnapshotRef, error) {
	if w == nil {
		return nil, nil
	}
	id, ok := parseID(w.SequenceID)
	if !ok {
		return nil, errs.Storage(nil, "the API returned a snapshot with sequence id %s", w.SequenceID)
	}
	return &eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(id), BlobID: w.BlobID}, nil
}

// query is GET log with the query's parameters (and wait, for Follow).
func (l *Log) query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID, wait int) (eventlog.Page, error) {
	if err := sheetid.Validate(l.sheet); err != nil {
		return eventlog.Page{}, err
	}
	q := url.Values{}
	switch id, ok := from.ID(); {
	case ok:
		q.Set("start", strconv.FormatUint(uint64(id), 10))
	case from.IsSnapshot():
		q.Set("start", "snapshot")
	}
	if id, ok := to.ID(); ok {
		q.Set("end", strconv.FormatUint(uint64(id), 10))
	}
	if known != nil {
		q.Set("snapshotId", strconv.FormatUint(uint64(*known), 10))
	}
	rq := request{method: http.MethodGet, path: sheetPath(l.sheet) + "/log", query: q}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(wait))
		rq.wait = secondsDuration(wait)
	}
	r, err := l.c.do(ctx, rq)
	if err != nil {
		return eventlog.Page{}, err
	}
	return decodePage(r.body)
}

func decodePage(body []byte) (eventlog.Page, error) {
	var w wirePage
	if err := json.Unmarshal(body, &w); err != nil {
		return eventlog.Page{}, errs.Storage(err, "the API returned a log page that is not valid JSON")
	}
	start, ok1 := parseID(w.Start)
	end, ok2 := parseID(w.End)
	if !ok1 || !ok2 || end < start || end-start != uint64(len(w.Entries)) {
		return eventlog.Page{}, errs.Storage(nil, "the API returned a log page [%s, %s) with %d entries", w.Start, w.End, len(w.Entries))
	}
	p := eventlog.Page{Start: eventlog.SequenceID(start), End: eventlog.SequenceID(end), Complete: w.Complete}
	var err error
	if p.LastSnapshot, err = w.LastSnapshot.ref(); err != nil {
		return eventlog.Page{}, err
	}
	p.Entries = make([]eventlog.Entry, len(w.Entries))
	for i, raw := range w.Entries {
		if p.Entries[i], err = splitEntry(raw); err != nil {
			return eventlog.Page{}, err
		}
	}
	return p, nil
}

// Query implements eventlog.EventLog: one page of GET log.
func (l *Log) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	return l.query(ctx, from, to, known, 0)
}

// AddEntry implements eventlog.EventLog: AddEntries of one entry.
func (l *Log) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

// AddEntries implements eventlog.EventLog with POST log. The entries must
// be SetCellValueAndFormat entries without metadata (the only ones the
// API takes); they are sent in their canonical encoding (Canonical), so
// that what a later read returns is exactly what was sent.
//
// # A lost reply
//
// When an attempt's reply is lost (a transport failure after the request
// may have left, a 5xx or 429 from the server or a gateway), the append
// may or may not have happened. The client never sends it blindly again:
// it reads the log at id, and
//
//   - finds its own entries there (the same bytes, entry by entry): the
//     append landed, and AddEntries succeeds;
//   - finds other entries: another writer won, and AddEntries returns a
//     *errs.ConflictError with the log's next id;
//   - finds the log ending at id: nothing landed, and the append is sent
//     again, at the same id.
//
// Every attempt is at the same id, so at most one of them can ever land:
// an entry is never appended twice. When the outcome cannot be settled
// before the retries run out (or the context ends), the error is a
// *errs.StorageError: the contract's "outcome unknown", which a caller
// resolves the same way (see Writer).
//
// The bytes at id are the only evidence of whose entries they are. If
// another writer appends byte-identical entries at the same id at the
// same time, the client cannot tell them from its own and reports
// success: the log then holds exactly the entries the caller wanted at
// the id it wanted, but only one of the two appends happened.
func (l *Log) AddEntries(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := sheetid.Validate(l.sheet); err != nil {
		return nil, err
	}
	bodies, err := canonicalBodies(entries)
	if err != nil {
		return nil, err
	}
	req := appendRequest(id, known, bodies)
	if len(req) > MaxBodyBytes {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Type: TypePayloadTooLarge,
			Message: "the append's request takes " + strconv.Itoa(len(req)) + " bytes; the API takes at most " + strconv.Itoa(MaxBodyBytes) + ": send fewer entries at once"}
	}
	rq := request{method: http.MethodPost, path: sheetPath(l.sheet) + "/log", body: req}
	var (
		uncertain bool  // an attempt may have landed
		last      error // the failure of the last attempt
	)
	for attempt := 0; attempt < l.c.retry.Attempts; attempt++ {
		r, sent, err := l.c.send(ctx, rq)
		var wait time.Duration
		switch {
		case err != nil:
			uncertain = uncertain || sent
			last = errs.Storage(err, "appending at %d", id)
		case r.status == http.StatusOK:
			return decodeAppendReply(r.body)
		case heldBack(r):
			// Refused before it reached the log.
			last, wait = decodeError(r), retryAfter(r.header)
		case transient(r.status):
			uncertain = true
			last, wait = decodeError(r), retryAfter(r.header)
		default:
			err := decodeError(r)
			var ce *errs.ConflictError
			if !uncertain || !errors.As(err, &ce) || ce.NextSequenceID < uint64(id) {
				// A definite answer: an earlier attempt cannot have
				// landed at id when the log's next id is still below it.
				return nil, err
			}
			last = err
		}
		if ctx.Err() != nil {
			return nil, l.unknown(ctx, id, uncertain, last)
		}
		if uncertain {
			o, ref, next, rerr := l.resolve(ctx, id, bodies, known)
			switch o {
			case ours:
				return ref, nil
			case theirs:
				return nil, errs.Conflict(uint64(id), next)
			case unresolved:
				last = errors.Join(last, rerr)
			}
		}
		if attempt+1 < l.c.retry.Attempts {
			if err := ctxsleep.Sleep(ctx, l.c.retry.backoff(attempt, wait)); err != nil {
				return nil, l.unknown(ctx, id, uncertain, last)
			}
		}
	}
	if uncertain {
		return nil, errs.Storage(last, "the append at %d may or may not have landed", id)
	}
	return nil, last
}

// unknown is the error of an append stopped by its context.
func (l *Log) unknown(ctx context.Context, id eventlog.SequenceID, uncertain bool, last error) error {
	if !uncertain {
		return contextError(ctx, last)
	}
	return &errs.StorageError{Message: "the append at " + strconv.FormatUint(uint64(id), 10) +
		" may or may not have landed: its context ended first", Err: errors.Join(ctx.Err(), last)}
}

// appendRequest encodes the body of POST log: "entry" for one entry (the
// form every server version takes), "entries" for a batch.
func appendRequest(id eventlog.SequenceID, known *eventlog.SequenceID, bodies [][]byte) []byte {
	n := 64
	for _, b := range bodies {
		n += len(b) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"sequenceId":"`...)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, '"')
	if known != nil {
		b = append(b, `,"snapshotId":"`...)
		b = strconv.AppendUint(b, uint64(*known), 10)
		b = append(b, '"')
	}
	if len(bodies) == 1 {
		b = append(b, `,"entry":`...)
		b = append(b, bodies[0]...)
		return append(b, '}')
	}
	b = append(b, `,"entries":[`...)
	for i, body := range bodies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, body...)
	}
	return append(b, "]}"...)
}

func decodeAppendReply(body []byte) (*eventlog.SnapshotRef, error) {
	var w struct {
		LastSnapshot *wireSnapshot `json:"lastSnapshot"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, errs.Storage(err, "the API acknowledged the append with a reply that is not valid JSON")
	}
	return w.LastSnapshot.ref()
}

type outcome uint8

const (
	unresolved outcome = iota
	ours
	theirs
	absent
)

// resolve reads the log at id to learn what became of an append whose
// reply was lost: its own entries there (ours), other entries (theirs,
// with the log's next id), or the log ending at id (absent).
func (l *Log) resolve(ctx context.Context, id eventlog.SequenceID, bodies [][]byte, known *eventlog.SequenceID) (outcome, *eventlog.SnapshotRef, uint64, error) {
	i := 0
	var last *eventlog.SnapshotRef
	end := id
	for page, err := range eventlog.Pages(ctx, l, eventlog.FromID(id), eventlog.ToEnd, known) {
		var re *errs.RangeError
		switch {
		case errors.As(err, &re) && i == 0:
			// id is outside the log: beyond its end, so nothing of ours
			// is there (yet), or truncated away, and then nobody can
			// tell.
			first, ferr := l.Query(ctx, eventlog.FromStart, eventlog.ToID(0), nil)
			if ferr == nil && first.Start <= id {
				return absent, nil, 0, nil
			}
			return unresolved, nil, 0, errors.Join(err, ferr)
		case err != nil:
			return unresolved, nil, 0, err
		}
		last = page.LastSnapshot
		for _, e := range page.Entries {
			if i < len(bodies) {
				if !bytes.Equal(e.Body, bodies[i]) {
					i = len(bodies) + 1 // someone else's: read on to the log's end
				} else {
					i++
				}
			}
		}
		end = page.End
		if i == len(bodies) {
			return ours, last, 0, nil
		}
	}
	if end == id {
		return absent, nil, 0, nil
	}
	return theirs, nil, uint64(end), nil
}

// SetMetadata implements eventlog.EventLog: a thin client never writes
// metadata, so it fails with ErrReadOnly and sends nothing.
func (l *Log) SetMetadata(context.Context, eventlog.SequenceID, eventlog.MetadataUpdate) (bool, error) {
	return false, readOnly("SetMetadata")
}

// Truncate implements eventlog.EventLog: a thin client never truncates a
// log, so it fails with ErrReadOnly and sends nothing.
func (l *Log) Truncate(context.Context, eventlog.SequenceID) error {
	return readOnly("Truncate")
}

func secondsDuration(n int) time.Duration { return time.Duration(n) * time.Second }
