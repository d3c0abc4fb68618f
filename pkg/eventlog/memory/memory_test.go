package memory_test

import (
	"fmt"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/eventlogtest"
	"github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts memory.Options
	}{
		{"PageSize1", memory.Options{PageSize: 1}},
		{"PageSize3", memory.Options{PageSize: 3, PageBytes: 4096}},
		{"Default", memory.Options{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			limits := eventlogtest.PageLimits(c.opts.PageSize, c.opts.PageBytes)
			if c.opts == (memory.Options{}) {
				limits = eventlogtest.PageLimits(memory.DefaultPageSize, memory.DefaultPageBytes)
			}
			eventlogtest.Run(t, func(*testing.T) eventlog.EventLog { return memory.New(c.opts) }, limits)
		})
	}
}

// The store hands out one log per sheet through the same suite.
func TestStoreConformance(t *testing.T) {
	store := memory.NewStore(memory.Options{PageSize: 7})
	n := 0
	eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
		n++
		l, err := store.Log(fmt.Sprintf("sheet-%d", n))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, eventlogtest.Light())
}
