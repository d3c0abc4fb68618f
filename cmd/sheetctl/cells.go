package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
)

// parseRange parses a RANGE argument and keeps it inside the grid.
func parseRange(s string) (a1.Range, error) {
	r, err := a1.ParseRange(s)
	if err != nil {
		return r, usagef("%v", err)
	}
	if r.Row1 > cell.MaxCoord || r.Col1 > cell.MaxCoord {
		return r, usagef("range %s reaches beyond the grid's last cell %s", s, a1.Ref(cell.MaxCoord, cell.MaxCoord))
	}
	return r, nil
}

// parseRef parses a REF argument (one cell) inside the grid.
func parseRef(what, s string) (row, col uint32, err error) {
	row, col, err = a1.Parse(s)
	if err != nil {
		return 0, 0, usagef("%s: %v", what, err)
	}
	if row > cell.MaxCoord || col > cell.MaxCoord {
		return 0, 0, usagef("%s: %s is beyond the grid's last cell %s", what, s, a1.Ref(cell.MaxCoord, cell.MaxCoord))
	}
	return row, col, nil
}

// readRange reads every non-empty cell of r through GET cells, in pieces
// of at most client.MaxRangeCells cells; a piece refused for the reply's
// byte bound (413) is split in two and asked again. Each piece's cells
// are handed to fn in row order, pieces in row order of their first
// rows (a row's cells may span pieces when the range is wider than a
// piece). end is the largest end sequence id seen.
// After the pieces of a block of whole rows, done (if not nil) is
// called with the block's rows.
func readRange(ctx context.Context, c *client.Client, sheet string, r a1.Range, fn func(piece a1.Range, cells client.Cells) error, done func(r0, r1 uint32) error) (requests int, err error) {
	var fetch func(p a1.Range) error
	fetch = func(p a1.Range) error {
		requests++
		cs, err := c.Cells(ctx, sheet, p)
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == http.StatusRequestEntityTooLarge {
			switch {
			case p.Row0 < p.Row1:
				mid := p.Row0 + (p.Row1-p.Row0)/2
				if err := fetch(a1.Range{Row0: p.Row0, Col0: p.Col0, Row1: mid, Col1: p.Col1}); err != nil {
					return err
				}
				return fetch(a1.Range{Row0: mid + 1, Col0: p.Col0, Row1: p.Row1, Col1: p.Col1})
			case p.Col0 < p.Col1:
				mid := p.Col0 + (p.Col1-p.Col0)/2
				if err := fetch(a1.Range{Row0: p.Row0, Col0: p.Col0, Row1: p.Row1, Col1: mid}); err != nil {
					return err
				}
				return fetch(a1.Range{Row0: p.Row0, Col0: mid + 1, Row1: p.Row1, Col1: p.Col1})
			}
		}
		if err != nil {
			return err
		}
		return fn(p, cs)
	}
	cols := min(r.Cols(), client.MaxRangeCells)
	rows := max(1, client.MaxRangeCells/cols)
	for r0 := uint64(r.Row0); r0 <= uint64(r.Row1); r0 += rows {
		r1 := min(r0+rows-1, uint64(r.Row1))
		for c0 := uint64(r.Col0); c0 <= uint64(r.Col1); c0 += cols {
			c1 := min(c0+cols-1, uint64(r.Col1))
			if err := fetch(a1.Range{Row0: uint32(r0), Col0: uint32(c0), Row1: uint32(r1), Col1: uint32(c1)}); err != nil {
				return requests, err
			}
		}
		if done != nil {
			if err := done(uint32(r0), uint32(r1)); err != nil {
				return requests, err
			}
		}
	}
	return requests, nil
}

// rowBlocks reads r and calls row for each of its rows in order, with
// the row's cells by column (absolute), gathering the pieces of a block
// of rows first.
func rowBlocks(ctx context.Context, c *client.Client, sheet string, r a1.Range, row func(rowIndex uint32, cells map[uint32]cell.Cell) error) (int, error) {
	block := map[uint32]map[uint32]cell.Cell{}
	return readRange(ctx, c, sheet, r, func(_ a1.Range, cs client.Cells) error {
		for pos, cl := range cs.Cells {
			m := block[pos.Row]
			if m == nil {
				m = map[uint32]cell.Cell{}
				block[pos.Row] = m
			}
			m[pos.Col] = cl
		}
		return nil
	}, func(r0, r1 uint32) error {
		for rr := uint64(r0); rr <= uint64(r1); rr++ {
			if err := row(uint32(rr), block[uint32(rr)]); err != nil {
				return err
			}
			delete(block, uint32(rr))
		}
		return nil
	})
}

func init() {
	register(&command{
		name: "get", args: "SHEET RANGE", minArgs: 2, maxArgs: 2,
		short: "print the cells of a range (a table; --json: the /cells reply)",
		long:  "RANGE is an A1 range (A1:J20) or one cell (B2). Empty cells are left out.\nWith --json, ranges over 10,000 cells print one /cells reply per piece, one per line.",
		run:   runGet,
	})
}

func runGet(e *env, c *client.Client, args []string) error {
	r, err := parseRange(args[1])
	if err != nil {
		return err
	}
	if e.json {
		_, err := readRange(e.ctx, c, args[0], r, func(_ a1.Range, cs client.Cells) error {
			b, err := json.Marshal(struct {
				End      string                     `json:"endSequenceId"`
				RowCount uint64                     `json:"rowCount"`
				ColCount uint64                     `json:"colCount"`
				Cells    map[string]json.RawMessage `json:"cells"`
			}{fmt.Sprint(cs.End), cs.RowCount, cs.ColCount, cs.Raw})
			if err == nil {
				_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			}
			return err
		}, nil)
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CELL\tVALUE\tFORMAT")
	_, err = rowBlocks(e.ctx, c, args[0], r, func(row uint32, cells map[uint32]cell.Cell) error {
		cols := make([]uint32, 0, len(cells))
		for k := range cells {
			cols = append(cols, k)
		}
		sort.Slice(cols, func(i, j int) bool { return cols[i] < cols[j] })
		for _, col := range cols {
			cl := cells[col]
			v := formatValue(cl.Value)
			if cl.Value.Kind() == cell.Null {
				v = "null"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a1.Ref(row, col), tabSafe(v), tabSafe(cl.Format))
		}
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// tabSafe keeps a value on its line of the table.
func tabSafe(s string) string {
	return strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`).Replace(s)
}
