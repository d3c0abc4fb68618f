package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// A server just restarted would load a sheet's engine (newest snapshot,
// then the log after it) on the sheet's first request: for a 40,000-cell
// sheet that is 20 to 70 ms added to the first /cells a page asks for
// (make bench-web). So the server remembers which sheets it held in
// memory, most recently used first, in recentSheetsFile under the data
// directory, and loads the first -warm-sheets of them in the background
// when it starts. The list is written at shutdown and every
// recentSheetsEvery while it changes, so a crash loses at most that
// much of it. A sheet asked for while it is being warmed waits for the
// same load (the engine cache builds each engine once).

const (
	recentSheetsFile  = "recent-sheets"
	recentSheetsEvery = time.Minute
	// defaultWarmSheets bounds the work at start: engines are loaded one
	// after the other, on one goroutine, so requests keep a core.
	defaultWarmSheets = 8
)

// warmFlag defines -warm-sheets on fs; the returned function parses it
// once fs has parsed its arguments, adding its problem to err.
func warmFlag(fs *flag.FlagSet, env func(name, def string) string) func(err error) (int, error) {
	var v string
	fs.StringVar(&v, "warm-sheets", env("SHEETLOG_WARM_SHEETS", strconv.Itoa(defaultWarmSheets)),
		"at start, load in the background the engines of this many of the sheets most recently held in memory before the last stop, so their first requests do not wait for it; 0 for none (SHEETLOG_WARM_SHEETS)")
	return func(err error) (int, error) {
		n, e := strconv.Atoi(strings.TrimSpace(v))
		if e != nil || n < 0 {
			err = errors.Join(err, fmt.Errorf("-warm-sheets: want an integer >= 0, got %q", v))
		}
		return n, err
	}
}

// warmer keeps the list of recent sheets of one data directory.
type warmer struct {
	path  string
	n     int
	cache *enginecache.Cache
	lg    *slog.Logger
	saved []string
}

// startWarming loads the engines of the recent sheets of dataDir into
// cache in the background and keeps the list current until ctx ends.
// The returned function stops that and writes the list once more: call
// it once the server has stopped taking requests. With n == 0 it does
// nothing at all, and leaves any list where it is.
func startWarming(ctx context.Context, lg *slog.Logger, dataDir string, n int, cache *enginecache.Cache) (stop func()) {
	if n == 0 {
		return func() {}
	}
	w := &warmer{path: filepath.Join(dataDir, recentSheetsFile), n: n, cache: cache, lg: lg}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.warm(ctx)
		t := time.NewTicker(recentSheetsEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.save()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		w.save()
	}
}

// warm loads the engines of the recent sheets, one after the other.
func (w *warmer) warm(ctx context.Context) {
	sheets, err := readRecentSheets(w.path, w.n)
	if err != nil {
		w.lg.Warn("could not read the recently used sheets; none warmed", "file", w.path, "err", err)
		return
	}
	w.saved = sheets
	t0 := time.Now()
	var loaded []string
	// The most recently used first: it is the likeliest to be asked for.
	for _, s := range sheets {
		err := w.cache.Do(ctx, s, func(e *spreadsheet.Engine) error { return e.Load(ctx) })
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.lg.Warn("could not warm a recently used sheet", "sheet", s, "err", err)
			continue
		}
		loaded = append(loaded, s)
	}
	if len(sheets) == 0 {
		return
	}
	// That left them in the cache least recently used first. When no
	// request came meanwhile, put them back in their order, so the list
	// outlives restarts that serve nothing.
	rev := slices.Clone(loaded)
	slices.Reverse(rev)
	if front := w.cache.Sheets(); len(front) >= len(rev) && slices.Equal(front[:len(rev)], rev) {
		for _, s := range rev {
			_, _ = w.cache.Get(ctx, s)
		}
	}
	w.lg.Info("warmed recently used sheets", "sheets", len(loaded), "of", len(sheets), "took", time.Since(t0).String())
}

// save writes the cache's sheets, most recently used first, when they
// changed since the last write.
func (w *warmer) save() {
	sheets := w.cache.Sheets()
	if len(sheets) > w.n {
		sheets = sheets[:w.n]
	}
	if len(sheets) == 0 || slices.Equal(sheets, w.saved) {
		return
	}
	if err := writeRecentSheets(w.path, sheets); err != nil {
		w.lg.Warn("could not write the recently used sheets", "file", w.path, "err", err)
		return
	}
	w.saved = sheets
}

// readRecentSheets reads at most n sheet ids, one a line. A missing file
// is an empty list; lines that are no sheet id (a file edited by hand)
// are skipped, so no engine is made for a name no request could use.
func readRecentSheets(path string, n int) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(out) < n {
		if s := strings.TrimSpace(sc.Text()); sheetid.Validate(s) == nil && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// writeRecentSheets replaces the file atomically (a temporary file, then
// a rename), so a crash leaves the old list or the new one.
func writeRecentSheets(path string, sheets []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), recentSheetsFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.WriteString(strings.Join(sheets, "\n") + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
