package client

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/internal/jsonscan"
	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Status is the reply of GET /v1/sheets/{sheet}.
type Status struct {
	Sheet      string
	Start, End eventlog.SequenceID
	// LastSnapshot is the newest snapshot (nil: none).
	LastSnapshot *eventlog.SnapshotRef
	Pending      []PendingWorkflow
	RowCount     uint64
	ColCount     uint64
	// Raw is the reply as the server sent it.
	Raw json.RawMessage
}

// PendingWorkflow is a workflow requested and not finished.
type PendingWorkflow struct {
	SequenceID eventlog.SequenceID
	Workflow   string
}

// Status reads a sheet's status: its ids, newest snapshot, pending
// workflows and counts.
func (c *Client) Status(ctx context.Context, sheet string) (Status, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return Status{}, err
	}
	r, err := c.do(ctx, request{method: http.MethodGet, path: sheetPath(sheet)})
	if err != nil {
		return Status{}, err
	}
	var w struct {
		Sheet        string          `json:"sheet"`
		Start        json.RawMessage `json:"startSequenceId"`
		End          json.RawMessage `json:"endSequenceId"`
		LastSnapshot *wireSnapshot   `json:"lastSnapshot"`
		Pending      []struct {
			SequenceID json.RawMessage `json:"sequenceId"`
			Workflow   string          `json:"workflow"`
		} `json:"pending"`
		RowCount uint64 `json:"rowCount"`
		ColCount uint64 `json:"colCount"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil {
		return Status{}, errs.Storage(err, "the API returned a status that is not valid JSON")
	}
	start, ok1 := parseID(w.Start)
	end, ok2 := parseID(w.End)
	if !ok1 || !ok2 {
		return Status{}, errs.Storage(nil, "the API returned a status with ids %s and %s", w.Start, w.End)
	}
	st := Status{Sheet: w.Sheet, Start: eventlog.SequenceID(start), End: eventlog.SequenceID(end), RowCount: w.RowCount, ColCount: w.ColCount, Raw: r.body}
	if st.LastSnapshot, err = w.LastSnapshot.ref(); err != nil {
		return Status{}, err
	}
	for _, p := range w.Pending {
		id, ok := parseID(p.SequenceID)
		if !ok {
			return Status{}, errs.Storage(nil, "the API returned a pending workflow at %s", p.SequenceID)
		}
		st.Pending = append(st.Pending, PendingWorkflow{SequenceID: eventlog.SequenceID(id), Workflow: p.Workflow})
	}
	return st, nil
}

// Cells is the reply of GET /v1/sheets/{sheet}/cells: the server's view
// of a range.
type Cells struct {
	// End is the sequence id the view is as of.
	End                eventlog.SequenceID
	RowCount, ColCount uint64
	// Cells holds the range's non-empty cells, by position.
	Cells map[Pos]cell.Cell
	// Raw holds each cell's JSON as the server sent it, by A1 key.
	Raw map[string]json.RawMessage
}

// Pos is a cell's position.
type Pos struct{ Row, Col uint32 }

// MaxRangeCells is the most cells one GET cells may ask for.
const MaxRangeCells = 10_000

// Cells reads the non-empty cells of r (at most MaxRangeCells cells). A
// range whose cells take more than the API's 8 MiB reply bound fails with
// an *Error of type PayloadTooLarge: ask for smaller pieces.
func (c *Client) Cells(ctx context.Context, sheet string, r a1.Range) (Cells, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return Cells{}, err
	}
	rep, err := c.do(ctx, request{method: http.MethodGet, path: sheetPath(sheet) + "/cells",
		query: url.Values{"range": {r.String()}}})
	if err != nil {
		return Cells{}, err
	}
	var w struct {
		End      json.RawMessage            `json:"endSequenceId"`
		RowCount uint64                     `json:"rowCount"`
		ColCount uint64                     `json:"colCount"`
		Cells    map[string]json.RawMessage `json:"cells"`
	}
	if err := json.Unmarshal(rep.body, &w); err != nil {
		return Cells{}, errs.Storage(err, "the API returned cells that are not valid JSON")
	}
	end, ok := parseID(w.End)
	if !ok {
		return Cells{}, errs.Storage(nil, "the API returned cells as of %s", w.End)
	}
	out := Cells{End: eventlog.SequenceID(end), RowCount: w.RowCount, ColCount: w.ColCount,
		Cells: make(map[Pos]cell.Cell, len(w.Cells)), Raw: w.Cells}
	for k, raw := range w.Cells {
		row, col, err := a1.Parse(k)
		if err != nil {
			return Cells{}, errs.Storage(err, "the API returned a cell at %q", k)
		}
		c, err := cell.DecodeCell(jsonscan.New(raw))
		if err != nil {
			return Cells{}, errs.Storage(err, "the API returned cell %s as %s", k, raw)
		}
		out.Cells[Pos{row, col}] = c
	}
	return out, nil
}

// Health is GET /healthz: nil when the deployment can reach its stores.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/healthz"})
	return err
}

// Follow is the change feed: it yields the sheet's entries from id from
// on, a page at a time, as they are appended, waiting for new ones with
// GET log?wait= (no polling loop: each request is held by the server
// until an entry arrives or its wait of up to 20 s runs out). Transient
// failures are retried with backoff for as long as ctx lasts; any other
// failure, or the end of ctx, is yielded with a zero Page and ends the
// feed. Stopping the loop early stops it too.
//
//	for page, err := range c.Follow(ctx, sheet, 0) {
//		if err != nil {
//			return err
//		}
//		for id, e := range page.All() {
//			...
//		}
//	}
func (c *Client) Follow(ctx context.Context, sheet string, from eventlog.SequenceID) iter.Seq2[eventlog.Page, error] {
	return func(yield func(eventlog.Page, error) bool) {
		l := c.Log(sheet)
		next := from
		fails := 0
		wait := FollowWait
		for {
			page, err := l.query(ctx, eventlog.FromID(next), eventlog.ToEnd, nil, wait)
			switch {
			case wait > 0 && waitRefused(err):
				// A server from before the change feed: poll instead.
				wait = 0
				continue
			case ctx.Err() != nil:
				yield(eventlog.Page{}, contextError(ctx, err))
				return
			case err != nil && errs.TypeOf(err) == errs.TypeStorage && headStatus(err) != http.StatusNotFound:
				// do already retried; the server or the network is
				// down for longer: keep waiting, backing off.
				if ctxsleep.Sleep(ctx, c.retry.backoff(min(fails, 10), 0)) != nil {
					yield(eventlog.Page{}, contextError(ctx, err))
					return
				}
				fails++
				continue
			case err != nil:
				yield(eventlog.Page{}, err)
				return
			}
			fails = 0
			if len(page.Entries) == 0 {
				if wait == 0 && ctxsleep.Sleep(ctx, FollowPoll) != nil {
					yield(eventlog.Page{}, contextError(ctx, nil))
					return
				}
				continue
			}
			if !yield(page, nil) {
				return
			}
			next = page.End
		}
	}
}

// FollowWait is the wait, in seconds, of Follow's requests: the API's
// largest.
const FollowWait = 20

// FollowPoll is how often Follow reads a server that does not take
// "wait" (one from before the change feed).
const FollowPoll = time.Second

// waitRefused reports the 400 of a server that does not know "wait".
func waitRefused(err error) bool {
	var ve *errs.ValidationError
	return errors.As(err, &ve) && strings.Contains(ve.Message, `"wait"`)
}
