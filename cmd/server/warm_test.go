package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRecentSheetsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), recentSheetsFile)
	if got, err := readRecentSheets(path, 8); err != nil || got != nil {
		t.Fatalf("missing file: %q, %v; want nothing, no error", got, err)
	}
	if err := writeRecentSheets(path, []string{"b.2", "a-1", "c_3"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readRecentSheets(path, 2); !slices.Equal(got, []string{"b.2", "a-1"}) {
		t.Fatalf("read %q, want the first two in order", got)
	}
	// A file edited by hand: names no request could use, blanks and
	// repeats are skipped.
	if err := os.WriteFile(path, []byte("ok\n\n../x\n..\n"+strings.Repeat("x", 65)+"\nok\n  two  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := readRecentSheets(path, 8); !slices.Equal(got, []string{"ok", "two"}) {
		t.Fatalf("read %q, want [ok two]", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), recentSheetsFile+".*")); len(left) > 0 {
		t.Fatalf("temporary files left: %q", left)
	}
}

// A restarted server loads the engines of the sheets it last held, most
// recently used first, before any request asks for them.
func TestWarmSheetsAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	p := startServer(t, dir, "-warm-sheets", "2")
	for _, s := range []string{"first", "second", "third"} {
		appendCells(t, ctx, p, s, &sheetModel{cells: map[string]float64{}}, 3)
		if _, err := p.do(ctx, "GET", "/v1/sheets/"+s+"/cells?range=A1:C3", nil, &map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, p.log())
	}
	got, err := readRecentSheets(filepath.Join(dir, recentSheetsFile), 8)
	if err != nil || !slices.Equal(got, []string{"third", "second"}) {
		t.Fatalf("recent sheets after stop: %q, %v; want [third second]", got, err)
	}

	p = startServer(t, dir, "-warm-sheets", "2")
	waitLog(t, p, `"msg":"warmed recently used sheets","sheets":2,"of":2`)

	// -warm-sheets 0 warms nothing and leaves the list as it was.
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	p = startServer(t, dir, "-warm-sheets", "0")
	if _, err := p.do(ctx, "GET", "/v1/sheets/first/cells?range=A1:C3", nil, &map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(p.log(), "warmed") {
		t.Fatalf("-warm-sheets 0 warmed:\n%s", p.log())
	}
	if got, _ := readRecentSheets(filepath.Join(dir, recentSheetsFile), 8); !slices.Equal(got, []string{"third", "second"}) {
		t.Fatalf("recent sheets after a run with -warm-sheets 0: %q, want [third second]", got)
	}
}

func TestWarmSheetsFlag(t *testing.T) {
	for _, v := range []string{"-1", "x"} {
		if _, err := parseConfig([]string{"-warm-sheets", v}, func(string) string { return "" }, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "-warm-sheets") {
			t.Errorf("-warm-sheets %s: %v, want an error naming the flag", v, err)
		}
	}
	c, err := parseConfig(nil, func(k string) string { return map[string]string{"SHEETLOG_WARM_SHEETS": "3"}[k] }, &strings.Builder{})
	if err != nil || c.warmSheets != 3 {
		t.Fatalf("SHEETLOG_WARM_SHEETS=3: %d, %v", c.warmSheets, err)
	}
	if c, _ := parseConfig(nil, func(string) string { return "" }, &strings.Builder{}); c.warmSheets != defaultWarmSheets {
		t.Fatalf("default %d, want %d", c.warmSheets, defaultWarmSheets)
	}
}

// waitLog waits until the server's log holds s.
func waitLog(t *testing.T, p *proc, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %s:\n%s", s, p.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
