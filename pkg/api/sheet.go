package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"

	sheetapi "github.com/sheetlog/sheetlog/api"
	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// cells serves GET /v1/sheets/{sheet}/cells?range=A1:J20.
func (h *handler) cells(rq *request) {
	sheet, err := rq.sheetParam()
	if err != nil {
		rq.fail(err)
		return
	}
	q, err := rq.queryParams("range")
	if err != nil {
		rq.fail(err)
		return
	}
	s, ok := q["range"]
	if !ok {
		rq.fail(validation(`query parameter "range" is required, e.g. range=A1:J20 or range=B2`))
		return
	}
	r, err := a1.ParseRange(s)
	if err != nil {
		rq.fail(validation(`"range": %v`, err))
		return
	}
	if r.Row1 > cell.MaxCoord || r.Col1 > cell.MaxCoord {
		rq.fail(validation(`"range" %q reaches beyond the last row or column (%s)`, truncate(s, 40), a1.Ref(cell.MaxCoord, cell.MaxCoord)))
		return
	}
	if n := r.Cells(); n > MaxRangeCells {
		rq.fail(validation(`"range" %s holds %d cells; at most %d may be read at once`, r, n, MaxRangeCells))
		return
	}
	var v spreadsheet.View
	err = h.cfg.Engines.Do(rq.ctx, sheet, func(e *spreadsheet.Engine) error {
		var err error
		v, err = e.Range(rq.ctx, r)
		return err
	})
	if err != nil {
		rq.fail(err)
		return
	}
	slices.SortFunc(v.Cells, func(a, b spreadsheet.PositionedCell) int {
		if a.Row != b.Row {
			return int(int64(a.Row) - int64(b.Row))
		}
		return int(int64(a.Col) - int64(b.Col))
	})
	// The reply is measured before it is built, so that a range of huge
	// cells costs no more than its largest cell until it is refused.
	var scratch []byte
	size := 96
	for _, c := range v.Cells {
		scratch = appendCell(scratch[:0], c)
		if size += len(scratch) + 1; size > MaxCellsReplyBytes {
			rq.fail(newError(http.StatusRequestEntityTooLarge, TypePayloadTooLarge, fmt.Sprintf(
				`the cells of "range" %s take more than %d bytes of JSON; ask for a smaller range`, r, MaxCellsReplyBytes)))
			return
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"endSequenceId":`...)
	b = appendID(b, uint64(v.Next))
	b = append(b, `,"rowCount":`...)
	b = strconv.AppendUint(b, v.RowCount, 10)
	b = append(b, `,"colCount":`...)
	b = strconv.AppendUint(b, v.ColCount, 10)
	b = append(b, `,"cells":{`...)
	for i, c := range v.Cells {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCell(b, c)
	}
	b = append(b, "}}"...)
	rq.writeJSON(200, b)
}

// appendCell appends one member of the "cells" object: "A1":{...}.
func appendCell(b []byte, c spreadsheet.PositionedCell) []byte {
	b = append(b, '"')
	b = a1.Append(b, c.Row, c.Col)
	b = append(b, `":`...)
	return c.Cell.AppendJSON(b)
}

// status serves GET /v1/sheets/{sheet}.
func (h *handler) status(rq *request) {
	sheet, err := rq.sheetParam()
	if err != nil {
		rq.fail(err)
		return
	}
	if _, err := rq.queryParams(); err != nil {
		rq.fail(err)
		return
	}
	var st spreadsheet.Status
	err = h.cfg.Engines.Do(rq.ctx, sheet, func(e *spreadsheet.Engine) error {
		var err error
		st, err = e.Status(rq.ctx)
		return err
	})
	if err != nil {
		rq.fail(err)
		return
	}
	b := append(make([]byte, 0, 256), `{"sheet":`...)
	b = cell.AppendString(b, sheet)
	b = append(b, `,"startSequenceId":`...)
	b = appendID(b, uint64(st.Start))
	b = append(b, `,"endSequenceId":`...)
	b = appendID(b, uint64(st.End))
	b = append(b, `,"lastSnapshot":`...)
	if st.LastSnapshot != nil {
		b = appendSnapshotRef(b, st.LastSnapshot)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"pending":[`...)
	for i, p := range st.Pending {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sequenceId":`...)
		b = appendID(b, uint64(p.SequenceID))
		b = append(b, `,"workflow":`...)
		b = cell.AppendString(b, p.Workflow)
		b = append(b, '}')
	}
	b = append(b, `],"rowCount":`...)
	b = strconv.AppendUint(b, st.RowCount, 10)
	b = append(b, `,"colCount":`...)
	b = strconv.AppendUint(b, st.ColCount, 10)
	b = append(b, '}')
	rq.writeJSON(200, b)
}

// health serves GET /healthz.
func (h *handler) health(rq *request) {
	if _, err := rq.queryParams(); err != nil {
		rq.fail(err)
		return
	}
	if h.cfg.Health != nil {
		if err := h.cfg.Health(rq.ctx); err != nil {
			// The cause stays in the log: /healthz needs no token.
			e := toAPIError(errs.Storage(err, "the stores cannot be reached"))
			e.status, e.statusCode = 503, 503
			e.message = "a backing store cannot be reached"
			rq.errType = e.typ
			h.log.LogAttrs(rq.ctx, rq.logLevel(e.status), "health check failed", slog.Any("err", err))
			rq.writeJSON(e.status, e.appendJSON(nil))
			return
		}
	}
	rq.writeJSON(200, []byte(`{"status":"ok"}`))
}

// openAPI serves GET /v1/openapi.yaml.
func (h *handler) openAPI(rq *request) {
	if _, err := rq.queryParams(); err != nil {
		rq.fail(err)
		return
	}
	rq.write(200, "application/yaml", sheetapi.OpenAPI)
}
