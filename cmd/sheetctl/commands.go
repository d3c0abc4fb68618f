package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

var (
	exportOut string
	setFlags  struct {
		format      string
		formatSet   bool
		forceString bool
	}
	logFlags struct {
		from   uint64
		follow bool
	}
)

func init() {
	register(&command{
		name: "export", args: "SHEET RANGE [-o FILE]", minArgs: 2, maxArgs: 2,
		short: "write the cells of a range as CSV (or XLSX when FILE ends in .xlsx)",
		long: `Without -o the CSV goes to standard output. Every row and column of RANGE
is written, empty cells as empty fields. The range is read through /cells
in pieces of at most 10,000 cells (smaller when a piece's reply would pass
the API's 8 MiB bound).

  -o FILE   write to FILE; .xlsx makes a workbook with one worksheet

` + valueRules,
		flags: func(fs *flag.FlagSet) {
			exportOut = ""
			fs.StringVar(&exportOut, "o", "", "")
		},
		run: runExport,
	})
	register(&command{
		name: "set", args: "SHEET REF VALUE [--format F] [--string]", minArgs: 3, maxArgs: 3,
		short: "set one cell (one append)",
		long: `VALUE is a number (a plain decimal), true or false (any case), null, a
cell error code such as #DIV/0!, or else a string; --string makes it a
string whatever it looks like. The cell's format is F with --format, and
absent without.`,
		flags: func(fs *flag.FlagSet) {
			setFlags.format, setFlags.formatSet, setFlags.forceString = "", false, false
			fs.Func("format", "", func(s string) error { setFlags.format, setFlags.formatSet = s, true; return nil })
			fs.BoolVar(&setFlags.forceString, "string", false, "")
		},
		run: runSet,
	})
	register(&command{
		name: "status", args: "SHEET", minArgs: 1, maxArgs: 1,
		short: "show a sheet's ids, last snapshot, pending workflows and counts",
		run:   runStatus,
	})
	register(&command{
		name: "log", args: "SHEET [--from ID] [--follow]", minArgs: 1, maxArgs: 1,
		short: "print the sheet's log entries as JSON lines",
		long: `Each line is {"sequenceId":"N","entry":{...}}, the entry as the API shows
it (with its snapshot and pending metadata).

  --from ID   start at entry ID (default: the first entry still in the log)
  --follow    keep printing entries as they are appended (the change feed)`,
		flags: func(fs *flag.FlagSet) {
			logFlags.from, logFlags.follow = 0, false
			fs.Uint64Var(&logFlags.from, "from", 0, "")
			fs.BoolVar(&logFlags.follow, "follow", false, "")
		},
		run: runLog,
	})
}

func runExport(e *env, c *client.Client, args []string) error {
	sheet := args[0]
	r, err := parseRange(args[1])
	if err != nil {
		return err
	}
	if strings.EqualFold(filepath.Ext(exportOut), ".xlsx") {
		return exportXLSX(e, c, sheet, r, exportOut)
	}
	var out io.Writer = e.stdout
	var f *os.File
	if exportOut != "" {
		if f, err = os.Create(exportOut); err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	cw := csv.NewWriter(bw)
	rec := make([]string, r.Cols())
	_, err = rowBlocks(e.ctx, c, sheet, r, func(_ uint32, cells map[uint32]cell.Cell) error {
		for i := range rec {
			rec[i] = ""
		}
		for col, cl := range cells {
			rec[col-r.Col0] = formatValue(cl.Value)
		}
		return cw.Write(rec)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

func exportXLSX(e *env, c *client.Client, sheet string, r a1.Range, path string) error {
	f := excelize.NewFile()
	defer f.Close()
	const ws = "Sheet1"
	sw, err := f.NewStreamWriter(ws)
	if err != nil {
		return err
	}
	row := make([]any, r.Cols())
	_, err = rowBlocks(e.ctx, c, sheet, r, func(rr uint32, cells map[uint32]cell.Cell) error {
		for i := range row {
			row[i] = nil
		}
		for col, cl := range cells {
			v := cl.Value
			switch v.Kind() {
			case cell.Number:
				row[col-r.Col0] = v.NumberVal()
			case cell.Bool:
				row[col-r.Col0] = v.BoolVal()
			case cell.String, cell.Error:
				row[col-r.Col0] = v.StringVal()
			}
		}
		ref, err := excelize.CoordinatesToCellName(1, int(rr-r.Row0)+1)
		if err != nil {
			return err
		}
		return sw.SetRow(ref, row)
	})
	if err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.SaveAs(path)
}

func runSet(e *env, c *client.Client, args []string) error {
	sheet := args[0]
	row, col, err := parseRef("REF", args[1])
	if err != nil {
		return err
	}
	v := cell.StringValue(args[2])
	if !setFlags.forceString {
		v = parseSetValue(args[2])
	}
	cl := cell.Cell{Value: v}
	if setFlags.formatSet {
		cl = cl.WithFormat(setFlags.format)
	}
	st, err := c.Status(e.ctx, sheet)
	if err != nil {
		return err
	}
	w := c.Writer(sheet, st.End)
	id, err := w.Append(e.ctx, cell.Entry{Row: row, Column: col, Cell: cl})
	if err != nil {
		return err
	}
	if e.json {
		fmt.Fprintf(e.stdout, `{"sequenceId":"%d","cell":%s,"value":%s}`+"\n", id, strconv.Quote(a1.Ref(row, col)), cl.AppendJSON(nil))
		return nil
	}
	fmt.Fprintf(e.stdout, "%s!%s = %s (entry %d)\n", sheet, a1.Ref(row, col), cl, id)
	return nil
}

func runStatus(e *env, c *client.Client, args []string) error {
	st, err := c.Status(e.ctx, args[0])
	if err != nil {
		return err
	}
	if e.json {
		_, err := fmt.Fprintf(e.stdout, "%s\n", st.Raw)
		return err
	}
	w := e.stdout
	fmt.Fprintf(w, "sheet:          %s\n", st.Sheet)
	if st.End == st.Start {
		fmt.Fprintf(w, "entries:        none (next id %d)\n", st.End)
	} else {
		fmt.Fprintf(w, "entries:        %d..%d (next id %d)\n", st.Start, st.End-1, st.End)
	}
	if st.LastSnapshot != nil {
		fmt.Fprintf(w, "last snapshot:  at entry %d (blob %s)\n", st.LastSnapshot.SequenceID, st.LastSnapshot.BlobID)
	} else {
		fmt.Fprintln(w, "last snapshot:  none")
	}
	if len(st.Pending) == 0 {
		fmt.Fprintln(w, "pending:        none")
	}
	for _, p := range st.Pending {
		fmt.Fprintf(w, "pending:        %s at entry %d\n", p.Workflow, p.SequenceID)
	}
	fmt.Fprintf(w, "size:           %d rows × %d columns\n", st.RowCount, st.ColCount)
	return nil
}

func runLog(e *env, c *client.Client, args []string) error {
	sheet := args[0]
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	print := func(page eventlog.Page) error {
		for id, ent := range page.All() {
			fmt.Fprintf(bw, `{"sequenceId":"%d","entry":%s}`+"\n", id, apiEntry(ent))
		}
		return bw.Flush()
	}
	from := eventlog.FromStart
	if logFlags.from > 0 {
		from = eventlog.FromID(eventlog.SequenceID(logFlags.from))
	}
	next := eventlog.SequenceID(logFlags.from)
	for page, err := range eventlog.Pages(e.ctx, c.Log(sheet), from, eventlog.ToEnd, nil) {
		if err != nil {
			return err
		}
		if err := print(page); err != nil {
			return err
		}
		next = page.End
	}
	if !logFlags.follow {
		return nil
	}
	for page, err := range c.Follow(e.ctx, sheet, next) {
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C ends a follow normally
			}
			return err
		}
		if err := print(page); err != nil {
			return err
		}
	}
	return nil
}

// apiEntry is an entry as the API shows it: the body with its metadata
// merged in.
func apiEntry(e eventlog.Entry) []byte {
	if e.Metadata == (eventlog.Metadata{}) {
		return e.Body
	}
	b := append([]byte(nil), strings.TrimRight(string(e.Body), " \t\r\n}")...)
	for _, m := range [...][2]string{{"snapshot", e.Snapshot}, {"history", e.History}, {"pending", e.Pending}} {
		if m[1] != "" {
			v, _ := json.Marshal(m[1])
			b = fmt.Appendf(b, `,%q:%s`, m[0], v)
		}
	}
	return append(b, '}')
}
