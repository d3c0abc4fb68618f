package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"github.com/xuri/excelize/v2"
	"golang.org/x/term"

	"github.com/sheetlog/sheetlog/pkg/a1"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

var importFlags struct {
	at, sheet string
	resume    int64
}

func init() {
	register(&command{
		name: "import", args: "SHEET FILE [--at REF] [--sheet NAME] [--resume N]", minArgs: 2, maxArgs: 2,
		short: "write a CSV or XLSX file into the sheet, from REF (default A1), through batch appends",
		long: `FILE is CSV (UTF-8, every line with the same number of fields), or
XLSX when its name ends in .xlsx (the first worksheet, or --sheet NAME);
"-" reads CSV from standard input. The whole file is read and checked
before anything is written: a file that is not valid writes nothing.

  --at REF      the cell the file's first field goes to (default A1)
  --sheet NAME  the XLSX worksheet to read (default: the first)
  --resume N    skip the file's first N cells (the non-empty fields, row by
                row), as an interrupted import reports

Cells are appended in batches of up to 99 entries and 64 KiB, each one
atomic. Another writer's appends are caught up with and the batch retried
after them: never written twice. A progress bar shows on stderr when it is
a terminal, otherwise one summary line at the end. Ctrl-C stops after the
batch in flight and prints the --resume point.

` + valueRules,
		flags: func(fs *flag.FlagSet) {
			importFlags.at, importFlags.sheet, importFlags.resume = "A1", "", 0
			fs.StringVar(&importFlags.at, "at", "A1", "")
			fs.StringVar(&importFlags.sheet, "sheet", "", "")
			fs.Int64Var(&importFlags.resume, "resume", 0, "")
		},
		run: runImport,
	})
}

// field is one non-empty field of the file, at its place in the sheet.
type field struct {
	row, col uint32
	value    cell.Value
}

func runImport(e *env, c *client.Client, args []string) error {
	sheet, file := args[0], args[1]
	row0, col0, err := parseRef("--at", importFlags.at)
	if err != nil {
		return err
	}
	if importFlags.resume < 0 {
		return usagef("--resume: want a number of cells >= 0, got %d", importFlags.resume)
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	var grid [][]cellText
	if strings.EqualFold(filepath.Ext(file), ".xlsx") {
		grid, err = readXLSX(data, importFlags.sheet)
	} else {
		if importFlags.sheet != "" {
			return usagef("--sheet is for XLSX files")
		}
		grid, err = readCSV(data)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	fields, err := place(grid, row0, col0)
	if err != nil {
		return err
	}
	if int64(len(fields)) < importFlags.resume {
		return usagef("--resume %d: the file has only %d cells", importFlags.resume, len(fields))
	}
	todo := fields[importFlags.resume:]
	batches, err := batch(todo)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return e.importBatches(c, sheet, fields, todo, batches)
}

// cellText is a field of the file, with the type an XLSX cell gave it.
type cellText struct {
	text string
	// typed is set when the file said what the value is (XLSX).
	typed *cell.Value
}

func readCSV(data []byte) ([][]cellText, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalid(data)], []byte{'\n'})
		return nil, fmt.Errorf("line %d is not valid UTF-8: save the file as UTF-8", line)
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 0
	var records [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
			return nil, fmt.Errorf("line %d has %d fields, but the first line has %d: every line needs the same number of fields", pe.StartLine, len(rec), len(records[0]))
		}
		if err != nil {
			return nil, fmt.Errorf("not valid CSV: %w", err)
		}
		records = append(records, rec)
	}
	grid := make([][]cellText, len(records))
	for i, rec := range records {
		grid[i] = make([]cellText, len(rec))
		for j, f := range rec {
			grid[i][j].text = f
		}
	}
	return grid, nil
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func readXLSX(data []byte, sheetName string) ([][]cellText, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an XLSX file: %w", err)
	}
	defer f.Close()
	if sheetName == "" {
		list := f.GetSheetList()
		if len(list) == 0 {
			return nil, errors.New("the workbook has no worksheet")
		}
		sheetName = list[0]
	}
	rows, err := f.GetRows(sheetName, excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fmt.Errorf("worksheet %q: %w", sheetName, err)
	}
	grid := make([][]cellText, len(rows))
	for i, row := range rows {
		grid[i] = make([]cellText, len(row))
		for j, raw := range row {
			grid[i][j].text = raw
			if raw == "" {
				continue
			}
			ref, _ := excelize.CoordinatesToCellName(j+1, i+1)
			typ, err := f.GetCellType(sheetName, ref)
			if err != nil {
				return nil, fmt.Errorf("cell %s: %w", ref, err)
			}
			var v cell.Value
			switch typ {
			case excelize.CellTypeBool:
				v = cell.BoolValue(raw == "1" || strings.EqualFold(raw, "true"))
			case excelize.CellTypeNumber, excelize.CellTypeUnset:
				n, err := strconv.ParseFloat(raw, 64)
				if err != nil {
					continue // not a number after all: the text rule decides
				}
				if v, err = cell.NumberValue(n); err != nil {
					continue
				}
			case excelize.CellTypeError:
				if v, err = cell.ErrorValue(raw); err != nil {
					v = cell.StringValue(raw)
				}
			case excelize.CellTypeSharedString, excelize.CellTypeInlineString:
				v = cell.StringValue(raw)
				if cell.IsErrorCode(raw) {
					v, _ = cell.ErrorValue(raw)
				}
			default:
				continue // dates, formulas: their text
			}
			grid[i][j].typed = &v
		}
	}
	return grid, nil
}

// place puts the file's non-empty fields at their cells, row by row, and
// checks that they fit in the grid.
func place(grid [][]cellText, row0, col0 uint32) ([]field, error) {
	var out []field
	for i, row := range grid {
		for j, f := range row {
			v, ok := parseField(f.text)
			if f.typed != nil {
				v, ok = *f.typed, true
			}
			if !ok {
				continue
			}
			r, c := uint64(row0)+uint64(i), uint64(col0)+uint64(j)
			if r > cell.MaxCoord || c > cell.MaxCoord {
				return nil, usagef("--at %s: the file's %d rows and %d columns reach beyond the grid's last cell %s",
					a1.Ref(row0, col0), len(grid), len(row), a1.Ref(cell.MaxCoord, cell.MaxCoord))
			}
			out = append(out, field{row: uint32(r), col: uint32(c), value: v})
		}
	}
	return out, nil
}

// batch splits the fields into appends of at most eventlog.MaxBatch
// entries whose request fits in the API's body limit.
func batch(fields []field) ([][]cell.Entry, error) {
	const room = client.MaxBodyBytes - client.BatchOverheadBytes
	var (
		out  [][]cell.Entry
		cur  []cell.Entry
		size int
	)
	for _, f := range fields {
		e := cell.Entry{Row: f.row, Column: f.col, Cell: cell.Cell{Value: f.value}}
		n := len(client.Canonical(e)) + 1
		if n > room {
			return nil, fmt.Errorf("cell %s takes %d bytes as an entry; the API takes at most %d", a1.Ref(f.row, f.col), n-1, room-1)
		}
		if len(cur) == eventlog.MaxBatch || size+n > room {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (e *env) importBatches(c *client.Client, sheet string, all []field, todo []field, batches [][]cell.Entry) error {
	// The batch in flight finishes even after Ctrl-C: only the loop
	// looks at e.ctx.
	ctx := context.WithoutCancel(e.ctx)
	st, err := c.Status(ctx, sheet)
	if err != nil {
		return err
	}
	w := c.Writer(sheet, st.End)
	var bar *progressbar.ProgressBar
	if isTerminal(e.stderr) {
		bar = progressbar.NewOptions64(int64(len(todo)),
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("cells"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	start := time.Now()
	done := int64(len(all) - len(todo))
	var first, last eventlog.SequenceID
	for i, b := range batches {
		if e.ctx.Err() != nil {
			if bar != nil {
				_ = bar.Exit()
			}
			return fmt.Errorf("interrupted: %d of %d cells written; resume with --resume %d", done, len(all), done)
		}
		id, err := w.Append(ctx, b...)
		if err != nil {
			if bar != nil {
				_ = bar.Exit()
			}
			return fmt.Errorf("%w (%d of %d cells written; resume with --resume %d)", err, done, len(all), done)
		}
		if i == 0 {
			first = id
		}
		last = id + eventlog.SequenceID(len(b)) - 1
		done += int64(len(b))
		if bar != nil {
			_ = bar.Add(len(b))
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	el := time.Since(start)
	rate := float64(len(todo)) / max(el.Seconds(), 1e-9)
	if e.json {
		fmt.Fprintf(e.stdout, `{"sheet":%q,"cells":%d,"batches":%d,"conflicts":%d,"seconds":%.3f,"cellsPerSecond":%.0f,"firstSequenceId":"%d","endSequenceId":"%d"}`+"\n",
			sheet, len(todo), len(batches), w.Stats.Conflicts, el.Seconds(), rate, first, w.Next())
		return nil
	}
	ids := "no entries"
	if len(batches) > 0 {
		ids = fmt.Sprintf("entries %d..%d", first, last)
	}
	fmt.Fprintf(e.stderr, "imported %d cells into %s in %d appends (%s) in %.2f s: %.0f cells/s, %d conflicts\n",
		len(todo), sheet, len(batches), ids, el.Seconds(), rate, w.Stats.Conflicts)
	return nil
}
