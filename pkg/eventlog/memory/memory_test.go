package memory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
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

// The logs a store hands out pass the same suite, sharing the store.
func TestStoreLogConformance(t *testing.T) {
	store := memory.NewStore(memory.Options{PageSize: 7})
	var n atomic.Int64
	eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
		l, err := store.Log(fmt.Sprintf("sheet-%d", n.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}, eventlogtest.Light())
}

func TestStore(t *testing.T) {
	eventlogtest.RunStore(t, memory.NewStore(memory.Options{}))
}

func TestStorePendingOrderAndContext(t *testing.T) {
	ctx := t.Context()
	s := memory.NewStore(memory.Options{})
	for _, sheet := range []string{"b", "a", "c"} {
		l, err := s.Log(sheet)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			e := eventlog.Entry{Body: []byte(`{"type":"X"}`)}
			if sheet != "c" && i%2 == 1 {
				e.Pending = eventlog.WorkflowSnapshot + sheet
			}
			if _, err := l.AddEntry(ctx, eventlog.SequenceID(i), e, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []eventlog.PendingEntry{
		{Sheet: "a", SequenceID: 1, Workflow: "snapshota"},
		{Sheet: "a", SequenceID: 3, Workflow: "snapshota"},
		{Sheet: "b", SequenceID: 1, Workflow: "snapshotb"},
		{Sheet: "b", SequenceID: 3, Workflow: "snapshotb"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Pending = %v, want %v (ordered by sheet, then id)", got, want)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Pending(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pending with a cancelled context: %v", err)
	}
}
