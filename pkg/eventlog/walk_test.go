package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/memory"
)

// countingLog counts queries and can break them.
type countingLog struct {
	eventlog.EventLog
	queries int
	stuck   bool // answer every query with an empty, incomplete page
}

func (l *countingLog) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	l.queries++
	if l.stuck {
		id, _ := from.ID()
		return eventlog.Page{Start: id, End: id}, nil
	}
	return l.EventLog.Query(ctx, from, to, known)
}

func filled(t *testing.T, n int, snapshotAt ...eventlog.SequenceID) *countingLog {
	t.Helper()
	ctx := context.Background()
	l := memory.New(memory.Options{PageSize: 3})
	for i := range n {
		e := eventlog.Entry{Body: fmt.Appendf(nil, `{"type":"T","i":%d}`, i)}
		if slices.Contains(snapshotAt, eventlog.SequenceID(i)) {
			e.Snapshot = fmt.Sprint(i)
		}
		if _, err := l.AddEntry(ctx, eventlog.SequenceID(i), e, nil); err != nil {
			t.Fatal(err)
		}
	}
	return &countingLog{EventLog: l}
}

func walk(t *testing.T, l eventlog.EventLog, from eventlog.From, to eventlog.To) (ids []eventlog.SequenceID, starts []eventlog.SequenceID, err error) {
	t.Helper()
	for page, err := range eventlog.Pages(context.Background(), l, from, to, nil) {
		if err != nil {
			return ids, starts, err
		}
		starts = append(starts, page.Start)
		for id, e := range page.All() {
			if want := fmt.Sprintf(`{"type":"T","i":%d}`, id); string(e.Body) != want {
				t.Fatalf("entry %d is %s, want %s", id, e.Body, want)
			}
			ids = append(ids, id)
		}
	}
	return ids, starts, nil
}

func seq(lo, hi eventlog.SequenceID) []eventlog.SequenceID {
	var out []eventlog.SequenceID
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

func TestPagesWalksEveryPage(t *testing.T) {
	l := filled(t, 10, 4)
	for _, tc := range []struct {
		name   string
		from   eventlog.From
		to     eventlog.To
		ids    []eventlog.SequenceID
		starts []eventlog.SequenceID
	}{
		{"whole log", eventlog.FromStart, eventlog.ToEnd, seq(0, 10), []eventlog.SequenceID{0, 3, 6, 9}},
		{"from the snapshot", eventlog.FromSnapshot, eventlog.ToEnd, seq(4, 10), []eventlog.SequenceID{4, 7}},
		{"bounded", eventlog.FromID(2), eventlog.ToID(7), seq(2, 7), []eventlog.SequenceID{2, 5}},
		{"empty range", eventlog.FromID(5), eventlog.ToID(5), nil, []eventlog.SequenceID{5}},
		{"at the end", eventlog.FromID(10), eventlog.ToEnd, nil, []eventlog.SequenceID{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, starts, err := walk(t, l, tc.from, tc.to)
			if err != nil || !slices.Equal(ids, tc.ids) || !slices.Equal(starts, tc.starts) {
				t.Fatalf("ids %v starts %v err %v; want ids %v starts %v", ids, starts, err, tc.ids, tc.starts)
			}
		})
	}
}

func TestPagesStopsWhenTheLoopDoes(t *testing.T) {
	l := filled(t, 10)
	for page, err := range eventlog.Pages(context.Background(), l, eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil || page.Start != 0 {
			t.Fatalf("first page %+v, %v", page, err)
		}
		break
	}
	if l.queries != 1 {
		t.Fatalf("%d queries after a break on the first page, want 1", l.queries)
	}
}

func TestPagesYieldsTheError(t *testing.T) {
	l := filled(t, 4)
	_, _, err := walk(t, l, eventlog.FromID(9), eventlog.ToEnd)
	var re *errs.RangeError
	if !errors.As(err, &re) {
		t.Fatalf("start beyond the log: %v, want a RangeError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for _, err := range eventlog.Pages(ctx, l, eventlog.FromStart, eventlog.ToEnd, nil) {
		n++
		if err == nil {
			t.Fatal("a cancelled walk yielded a page")
		}
	}
	if n != 1 {
		t.Fatalf("a failed walk yielded %d times, want once", n)
	}
}

func TestPagesRefusesAWalkThatDoesNotMove(t *testing.T) {
	l := filled(t, 4)
	l.stuck = true
	_, _, err := walk(t, l, eventlog.FromID(1), eventlog.ToEnd)
	var se *errs.StorageError
	if !errors.As(err, &se) || l.queries != 1 {
		t.Fatalf("an empty incomplete page: %v after %d queries, want a StorageError after 1", err, l.queries)
	}
}
