package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
)

// result is one run of sheetctl.
type result struct {
	code           int
	stdout, stderr string
}

// sheetctl runs the real main's run with args against the server.
func sheetctl(t *testing.T, ctx context.Context, s *apitest.Server, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{}
	if s != nil {
		env["SHEETLOG_URL"] = s.URL
	}
	code := runEnv(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// entries is the number of entries in a sheet's log.
func entries(t *testing.T, s *apitest.Server, sheet string) int {
	t.Helper()
	l, err := s.Logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for p, err := range eventlog.Pages(t.Context(), l, eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Entries)
	}
	return n
}

// roundTripCSV is a file in the text form: quotes, commas, newlines,
// unicode, empty cells, numbers, booleans, errors, 10,000 rows.
func roundTripCSV(rows int) []byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	texts := []string{`say "hi"`, "a,b", "two\nlines", "crlf\r\nkept? no: lf", "日本語", "émoji 🎉", " padded ", "007", "12345", "1e5", "NaN", "+1", ".5", "x"}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	for r := range rows {
		rec := make([]string, 6)
		for c := range rec {
			switch rnd.IntN(9) {
			case 0, 1:
				rec[c] = "" // empty cell
			case 2:
				rec[c] = fmt.Sprint(r*7 + c)
			case 3:
				rec[c] = formatNumber(float64(r) / 8)
			case 4:
				rec[c] = []string{"TRUE", "FALSE"}[rnd.IntN(2)]
			case 5:
				rec[c] = cell.ErrorCodes[rnd.IntN(len(cell.ErrorCodes))]
			case 6:
				rec[c] = fmt.Sprintf("-%d.25", r)
			default:
				rec[c] = texts[rnd.IntN(len(texts))]
			}
		}
		rec[0] = fmt.Sprint(r) // no row is all empty
		_ = w.Write(rec)
	}
	w.Flush()
	// csv.Writer keeps \r\n inside quoted fields, which a reader turns
	// into \n: the file in text form has none.
	return bytes.ReplaceAll(b.Bytes(), []byte("\r\n"), []byte("\n"))
}

func TestCSVRoundTrip(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	data := roundTripCSV(10_000)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := sheetctl(t, ctx, s, "", "import", "rt", in).want(t, 0)
	if !strings.Contains(r.stderr, "imported ") {
		t.Errorf("no summary line: %q", r.stderr)
	}
	out := filepath.Join(dir, "out.csv")
	sheetctl(t, ctx, s, "", "export", "rt", "A1:F10000", "-o", out).want(t, 0)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Fatalf("export differs from the import at byte %d: %q vs %q", i, got[i:min(i+60, len(got))], data[i:min(i+60, len(data))])
	}
	// To stdout too, the same bytes.
	if r := sheetctl(t, ctx, s, "", "export", "rt", "A1:F10000").want(t, 0); r.stdout != string(data) {
		t.Fatal("export to stdout differs from the import")
	}
	// A batch is at most 99 entries: the import made about cells/99
	// appends (and one status request).
	n := entries(t, s, "rt")
	t.Logf("%d cells imported", n)
}

func TestXLSX(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	ctx := t.Context()
	dir := t.TempDir()
	// A workbook as a spreadsheet program writes it: typed cells.
	f := excelize.NewFile()
	vals := [][]any{
		{"name", "n", "ok", "err"},
		{"a, \"quoted\"", 3.25, true, "#DIV/0!"},
		{"007", 7.0, false, nil},
		{"日本語\nline", -0.5, nil, "#N/A"},
	}
	for i, row := range vals {
		ref, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", ref, &row); err != nil {
			t.Fatal(err)
		}
	}
	in := filepath.Join(dir, "in.xlsx")
	if err := f.SaveAs(in); err != nil {
		t.Fatal(err)
	}
	sheetctl(t, ctx, s, "", "import", "x", in, "--at", "B2").want(t, 0)
	want := ",,,,\n,name,n,ok,err\n,\"a, \"\"quoted\"\"\",3.25,TRUE,#DIV/0!\n,007,7,FALSE,\n,\"日本語\nline\",-0.5,,#N/A\n"
	if r := sheetctl(t, ctx, s, "", "export", "x", "A1:E5").want(t, 0); r.stdout != want {
		t.Fatalf("XLSX imported as\n%s\nwant\n%s", r.stdout, want)
	}
	// Export to XLSX, read it back with excelize, and import it again.
	out := filepath.Join(dir, "out.xlsx")
	sheetctl(t, ctx, s, "", "export", "x", "B2:E5", "-o", out).want(t, 0)
	g, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	checks := map[string][2]string{ // cell: raw value, type
		"B2": {"3.25", "number"}, "C2": {"1", "bool"}, "A3": {"007", "string"}, "B4": {"-0.5", "number"},
	}
	for ref, w := range checks {
		v, _ := g.GetCellValue("Sheet1", ref, excelize.Options{RawCellValue: true})
		typ, _ := g.GetCellType("Sheet1", ref)
		if v != w[0] || (w[1] == "bool") != (typ == excelize.CellTypeBool) || (w[1] == "string") != (typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString) {
			t.Errorf("exported %s is %q of type %v, want %s %s", ref, v, typ, w[1], w[0])
		}
	}
	sheetctl(t, ctx, s, "", "import", "x2", out).want(t, 0)
	a := sheetctl(t, ctx, s, "", "export", "x", "B2:E5").want(t, 0)
	b := sheetctl(t, ctx, s, "", "export", "x2", "A1:D4").want(t, 0)
	if a.stdout != b.stdout {
		t.Fatalf("XLSX round trip:\n%s\nvs\n%s", a.stdout, b.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	s := apitest.New(t, apitest.Options{Token: "sesame"})
	ctx := t.Context()
	r := sheetctl(t, ctx, s, "", "set", "e", "B2", "42", "--token", "sesame").want(t, 0)
	if !strings.Contains(r.stdout, "B2") {
		t.Errorf("set says %q", r.stdout)
	}
	// Flags before and after the arguments, globals before the command.
	sheetctl(t, ctx, s, "", "--token", "sesame", "get", "--json", "e", "B2").want(t, 0)
	r = sheetctl(t, ctx, s, "", "get", "e", "A1:C3", "--token=sesame").want(t, 0)
	if !strings.Contains(r.stdout, "B2") || !strings.Contains(r.stdout, "42") {
		t.Errorf("get prints %q", r.stdout)
	}
	// 1: the server refused; its error type on stderr, one line.
	r = sheetctl(t, ctx, s, "", "get", "e", "B2", "--token", "wrong").want(t, 1)
	if !strings.HasPrefix(r.stderr, "sheetctl: Unauthorized: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line with the server's error type", r.stderr)
	}
	r = sheetctl(t, ctx, s, "", "log", "e", "--from", "9", "--token", "sesame").want(t, 1)
	if !strings.Contains(r.stderr, "RangeError") {
		t.Errorf("stderr %q, want the RangeError", r.stderr)
	}
	// 2: usage.
	for _, args := range [][]string{{}, {"nope"}, {"get", "e"}, {"get", "e", "B2", "C3"}, {"get", "e", "B0"},
		{"get", "--bogus", "e", "B2"}, {"set", "e", "B", "1"}, {"help", "nope"}, {"export", "e", "A1:XFD3000000000"}} {
		if r := sheetctl(t, ctx, s, "", args...); r.code != 2 || r.stderr == "" {
			t.Errorf("sheetctl %q: exit %d, stderr %q; want 2 and a message", args, r.code, r.stderr)
		}
	}
	// help.
	if r := sheetctl(t, ctx, s, "", "help").want(t, 0); !strings.Contains(r.stdout, "import") {
		t.Errorf("help: %q", r.stdout)
	}
	r = sheetctl(t, ctx, s, "", "import", "--help").want(t, 0)
	for _, w := range []string{"plain decimal", "007", "TRUE or FALSE", "#DIV/0!", "empty field writes nothing", "--resume"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("import --help does not mention %q", w)
		}
	}
}

// TestBadInput: every bad input fails clearly and writes nothing.
func TestBadInput(t *testing.T) {
	s := apitest.New(t, apitest.Options{Token: "sesame"})
	ctx := t.Context()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good.csv", "a,b\nc,d\n")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"NotUTF8", []string{file("latin1.csv", "a,b\nd\xe9j\xe0,x\n")}, 1, "line 2 is not valid UTF-8"},
		{"Ragged", []string{file("ragged.csv", "a,b\nc\nd,e\n")}, 1, "line 2 has 1 fields, but the first line has 2"},
		{"Truncated", []string{file("trunc.csv", "a,b\n\"c,d\n")}, 1, "not valid CSV"},
		{"NotZip", []string{file("fake.xlsx", "a,b\n")}, 1, "not an XLSX file"},
		{"BeyondGrid", []string{good, "--at", "B2147483648"}, 2, "beyond the grid"},
		{"AtNotARef", []string{good, "--at", "nowhere"}, 2, "--at"},
		{"Token", []string{good, "--token", "wrong"}, 1, "Unauthorized"},
		{"MissingFile", []string{filepath.Join(dir, "none.csv")}, 1, "none.csv"},
		{"ResumeTooFar", []string{good, "--resume", "9"}, 2, "--resume"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"import", "bad-" + c.name}, c.args...)
			if c.name != "Token" {
				args = append(args, "--token", "sesame")
			}
			r := sheetctl(t, ctx, s, "", args...).want(t, c.code)
			if !strings.Contains(r.stderr, c.msg) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line saying %q", r.stderr, c.msg)
			}
			if n := entries(t, s, "bad-"+c.name); n != 0 {
				t.Errorf("%d entries written", n)
			}
		})
	}
	// The last grid row is fine; one more is beyond.
	sheetctl(t, ctx, s, "", "import", "edge", good, "--at", "A2147483648", "--token", "sesame").want(t, 2)
	sheetctl(t, ctx, s, "", "import", "edge", file("one.csv", "a\n"), "--at", "XFD2147483648", "--token", "sesame").want(t, 0)
}

// TestImportInterruptAndConflict: Ctrl-C stops after the batch in flight
// and prints the resume point; --resume finishes the file; another
// writer's append during the import is caught up with and nothing is
// written twice.
func TestImportInterruptAndConflict(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	dir := t.TempDir()
	var b strings.Builder
	for r := range 300 {
		fmt.Fprintf(&b, "%d,v%d\n", r, r)
	}
	in := filepath.Join(dir, "in.csv")
	if err := os.WriteFile(in, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	direct, _ := s.Logs.Log("ic")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var posts atomic.Int32
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		switch posts.Add(1) {
		case 2:
			// Another writer appends first: the batch conflicts.
			next := eventlog.SequenceID(99)
			e := eventlog.Entry{Body: client.Canonical(cell.Entry{Row: 500, Column: 0, Cell: cell.Cell{Value: cell.StringValue("other")}})}
			if _, err := direct.AddEntry(r.Context(), next, e, nil); err != nil {
				t.Error(err)
			}
		case 4:
			cancel() // Ctrl-C while this batch is in flight
		}
		return false
	})
	r := sheetctl(t, ctx, s, "", "import", "ic", in).want(t, 1)
	if !strings.Contains(r.stderr, "interrupted") || !strings.Contains(r.stderr, "--resume 297") {
		t.Fatalf("stderr %q, want the resume point after 3 batches of 99", r.stderr)
	}
	if n := entries(t, s, "ic"); n != 3*99+1 {
		t.Fatalf("%d entries after the interruption, want 3 batches and the other writer's entry", n)
	}
	sheetctl(t, t.Context(), s, "", "import", "ic", in, "--resume", "297").want(t, 0)
	got := sheetctl(t, t.Context(), s, "", "export", "ic", "A1:B300").want(t, 0)
	if got.stdout != b.String() {
		t.Fatal("the resumed import does not export as the file")
	}
	if n := entries(t, s, "ic"); n != 601 {
		t.Fatalf("%d entries, want 600 cells and the other writer's entry", n)
	}
}

func TestValues(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "0.5": true, "3.10": true, "-12": true, "10": true, "123456789012345678901234567890": true,
		"007": false, "00": false, "01.5": false, "1e5": false, "+1": false, ".5": false, "1.": false, "NaN": false,
		"": false, "-": false, " 1": false, "1 ": false, "1,5": false, "0x1": false, "Inf": false,
	} {
		if got := isPlainDecimal(s); got != want {
			t.Errorf("isPlainDecimal(%q) = %v", s, got)
		}
	}
	for in, want := range map[string]string{"3.10": "3.1", "true": "TRUE", "False": "FALSE", "#N/A": "#N/A", "#n/a": "#n/a",
		"1e5": "1e5", "-0": "0", "0.1": "0.1", "100000000000000000000000": "100000000000000000000000", " x ": " x "} {
		v, ok := parseField(in)
		if !ok || formatValue(v) != want {
			t.Errorf("%q imports and exports as %q, want %q", in, formatValue(v), want)
		}
	}
	if _, ok := parseField(""); ok {
		t.Error("an empty field writes something")
	}
	if v := parseSetValue("null"); v.Kind() != cell.Null {
		t.Errorf("set null: %v", v)
	}
}

// TestBinary builds sheetctl and runs it.
func TestBinary(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	bin := filepath.Join(t.TempDir(), "sheetctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "set", "bin", "A1", "x", "--url", s.URL)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sheetctl set: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--url", s.URL, "export", "bin", "A1:B1").Output()
	if err != nil || string(out) != "x,\n" {
		t.Fatalf("sheetctl export: %q, %v", out, err)
	}
	err = exec.Command(bin).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("sheetctl with no command: %v, want exit status 2", err)
	}
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogFollow: log --follow prints the entries as JSON lines as they
// are appended, and Ctrl-C ends it with status 0.
func TestLogFollow(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	sheetctl(t, t.Context(), s, "", "set", "lf", "A1", "1").want(t, 0)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"log", "lf", "--follow"}, nil, &out, &errb, func(k string) string {
			if k == "SHEETLOG_URL" {
				return s.URL
			}
			return ""
		})
	}()
	sheetctl(t, t.Context(), s, "", "set", "lf", "B2", "two words").want(t, 0)
	want := `{"sequenceId":"0","entry":{"type":"SetCellValueAndFormat","row":0,"column":0,"value":1}}` + "\n" +
		`{"sequenceId":"1","entry":{"type":"SetCellValueAndFormat","row":1,"column":1,"value":"two words"}}` + "\n"
	deadline := time.Now().Add(30 * time.Second)
	for out.String() != want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 || out.String() != want {
		t.Fatalf("log --follow: exit %d, printed\n%s\nwant\n%s\nstderr: %s", code, out.String(), want, errb.String())
	}
}

// TestToken: sheetctl token signs a development JWT that a server
// verifying against the key set accepts, within its scopes; outside them
// the server's 403 is reported as not allowed on this sheet.
func TestToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := sheetctl(t, t.Context(), nil, "", "token", "--keys", dir, "--scope", "sheets:write:team-7-*", "--sub", "alice").want(t, 0)
	tok := strings.TrimSpace(r.stdout)
	if strings.Count(tok, ".") != 2 || !strings.Contains(r.stderr, "-jwt-keys "+filepath.Join(dir, jwtauth.JWKSFile)) {
		t.Fatalf("token %q, stderr %q", tok, r.stderr)
	}
	v, err := jwtauth.New(t.Context(), jwtauth.Options{Keys: filepath.Join(dir, jwtauth.JWKSFile), Issuer: "sheetlog-dev", Audience: []string{"sheetlog"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	s := apitest.New(t, apitest.Options{Auth: api.BearerTokens(v)})
	sheetctl(t, t.Context(), s, "", "set", "team-7-a", "A1", "1", "--token", tok).want(t, 0)
	r = sheetctl(t, t.Context(), s, "", "set", "team-8-a", "A1", "1", "--token", tok).want(t, 1)
	if !strings.HasPrefix(r.stderr, "sheetctl: Forbidden: not allowed on this sheet") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = sheetctl(t, t.Context(), s, "", "status", "team-7-a").want(t, 1)
	if !strings.HasPrefix(r.stderr, "sheetctl: Unauthorized: ") {
		t.Errorf("no token: stderr %q", r.stderr)
	}
}

// TestExportLargeCells: a range whose cells take more than the API's 8
// MiB reply is refused (413) and read in smaller pieces.
func TestExportLargeCells(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	l, err := s.Logs.Log("big")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	id := eventlog.SequenceID(0)
	for r := range 100 {
		rec := make([]string, 3)
		var es []eventlog.Entry
		for c := range rec {
			rec[c] = strings.Repeat(string(rune('a'+(r+c)%26)), 30_000) + fmt.Sprint(r, c)
			es = append(es, eventlog.Entry{Body: client.Canonical(cell.Entry{Row: uint32(r), Column: uint32(c), Cell: cell.Cell{Value: cell.StringValue(rec[c])}})})
		}
		if _, err := l.AddEntries(t.Context(), id, es, nil); err != nil {
			t.Fatal(err)
		}
		id += 3
		fmt.Fprintf(&want, "%s\n", strings.Join(rec, ","))
	}
	var requests atomic.Int32
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		requests.Add(1)
		return false
	})
	out := sheetctl(t, t.Context(), s, "", "export", "big", "A1:C100").want(t, 0)
	if out.stdout != want.String() {
		t.Fatalf("export of 9 MB of cells differs (%d bytes, want %d)", len(out.stdout), want.Len())
	}
	if requests.Load() < 3 {
		t.Fatalf("%d requests: the 9 MB range was not split", requests.Load())
	}
	t.Logf("%d requests", requests.Load())
}
