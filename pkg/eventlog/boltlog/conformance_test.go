package boltlog

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/eventlogtest"
)

func openQuiet(t *testing.T, o Options) *Store {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := Open(filepath.Join(t.TempDir(), "log.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The suite's own checks went through the API; this one reads the
		// file behind it.
		if err := s.Verify(context.Background()); err != nil {
			t.Error(err)
		}
		_ = s.Close()
	})
	return s
}

// TestConformance runs the shared suite against logs of one store file,
// a new sheet for every log, with tiny and default page bounds. Every
// write is an fsync'd commit, so the small-page runs shorten the property
// test, which is the slowest part and does not depend on page bounds,
// and the variants run in parallel: the run is bound by fsync latency,
// not CPU.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		opts  Options
		extra []eventlogtest.Option
	}{
		{"PageSize1", Options{PageSize: 1}, []eventlogtest.Option{eventlogtest.PropertySteps(15)}},
		{"PageSize3", Options{PageSize: 3, PageBytes: 4096}, []eventlogtest.Option{eventlogtest.PropertySteps(15)}},
		{"Default", Options{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Each variant has its own file; their fsyncs overlap.
			t.Parallel()
			s := openQuiet(t, c.opts)
			o := c.opts.withDefaults()
			var n atomic.Int64
			eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
				l, err := s.Log(fmt.Sprintf("sheet-%d", n.Add(1)))
				if err != nil {
					t.Fatal(err)
				}
				return l
			}, append([]eventlogtest.Option{eventlogtest.PageLimits(o.PageSize, o.PageBytes)}, c.extra...)...)
		})
	}
}

func TestStoreConformance(t *testing.T) {
	eventlogtest.RunStore(t, openQuiet(t, Options{}))
}
