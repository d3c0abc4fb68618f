package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// retention is the snapshot retention the server runs (see
// spreadsheet.Retire).
type retention struct {
	// retain is K; 0 keeps every snapshot.
	retain int
	// grace is G; 0 retires as soon as a newer snapshot completes.
	grace       time.Duration
	truncateLog bool
}

func (r retention) on() bool { return r.retain > 0 }

// retentionFlags defines -snapshot-retain, -snapshot-grace and
// -truncate-log on fs; the returned function parses them once fs has
// parsed its arguments, adding its problems to err.
func retentionFlags(fs *flag.FlagSet, env func(name, def string) string) func(err error) (retention, error) {
	var retain, grace, truncate string
	fs.StringVar(&retain, "snapshot-retain", env("SHEETLOG_SNAPSHOT_RETAIN", strconv.Itoa(spreadsheet.DefaultRetain)),
		"completed snapshots kept per sheet; older ones are removed once their grace is over; 0 keeps them all (SHEETLOG_SNAPSHOT_RETAIN)")
	fs.StringVar(&grace, "snapshot-grace", env("SHEETLOG_SNAPSHOT_GRACE", spreadsheet.DefaultRetireGrace.String()),
		"how long a snapshot beyond the kept ones stays after a newer one completes, for readers still loading it (SHEETLOG_SNAPSHOT_GRACE)")
	truncate = env("SHEETLOG_TRUNCATE_LOG", "false")
	fs.Var(boolText{&truncate}, "truncate-log",
		"after retention, delete the log entries before the oldest snapshot kept (the sheet's history before it is lost) (SHEETLOG_TRUNCATE_LOG)")
	return func(err error) (retention, error) {
		var r retention
		n, e := strconv.Atoi(strings.TrimSpace(retain))
		if e != nil || n < 0 {
			err = errors.Join(err, fmt.Errorf("-snapshot-retain: want an integer >= 0, got %q", retain))
		}
		r.retain = n
		d, e := time.ParseDuration(strings.TrimSpace(grace))
		if e != nil || d < 0 {
			err = errors.Join(err, fmt.Errorf("-snapshot-grace: want a duration >= 0 such as 10m, got %q", grace))
		}
		r.grace = d
		b, e := strconv.ParseBool(strings.TrimSpace(truncate))
		if e != nil {
			err = errors.Join(err, fmt.Errorf("-truncate-log: want true or false, got %q", truncate))
		}
		r.truncateLog = b
		if b && n == 0 {
			err = errors.Join(err, errors.New("-truncate-log needs retention: it truncates to the oldest snapshot kept, and -snapshot-retain 0 keeps them all"))
		}
		return r, err
	}
}

// apply sets the engine's retention options.
func (r retention) apply(o *spreadsheet.Options) {
	if !r.on() {
		o.Retain = spreadsheet.RetainAll
		return
	}
	o.Retain = r.retain
	o.RetireGrace = r.grace
	if r.grace == 0 {
		o.RetireGrace = spreadsheet.NoGrace
	}
	o.TruncateLog = r.truncateLog
}

// sheetLister lists every sheet of the event log store.
type sheetLister interface {
	Sheets(ctx context.Context) ([]string, error)
}

// afterRestart asks for a pass over every sheet a grace after start: the
// passes asked for before a restart (a grace after each sheet's last
// snapshot) died with the process.
func (r retention) afterRestart(ctx context.Context, lg *slog.Logger, logs sheetLister, s *spreadsheet.RetireScheduler) {
	sheets, err := logs.Sheets(ctx)
	if err != nil {
		lg.Warn("could not list the sheets for retention after the start; each sheet's next snapshot retires", "err", err)
		return
	}
	due := time.Now().Add(r.grace)
	for _, sheet := range sheets {
		s.Schedule(ctx, sheet, due)
	}
}

// boolText is a boolean flag ("-truncate-log" alone means true) kept as
// text, so that a bad value from the environment is reported with the
// other problems rather than by the flag package.
type boolText struct{ s *string }

func (b boolText) String() string {
	if b.s == nil {
		return "false"
	}
	return *b.s
}
func (b boolText) Set(v string) error { *b.s = v; return nil }
func (b boolText) IsBoolFlag() bool   { return true }
