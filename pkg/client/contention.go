package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// ContentionReport is what RunContention measured.
type ContentionReport struct {
	Writers, Appends int
	// Landed is the number of appends acknowledged.
	Landed int
	// Conflicts is the total over all writers; MaxInARow the longest run
	// of conflicts any one append met; PerWriter each writer's conflicts.
	Conflicts, MaxInARow int
	PerWriter            []int
	Elapsed              time.Duration
}

func (r ContentionReport) String() string {
	return fmt.Sprintf("%d writers × %d appends: %d landed in %v; %d conflicts (per writer %v), at most %d in a row for one append",
		r.Writers, r.Appends, r.Landed, r.Elapsed.Round(time.Millisecond), r.Conflicts, r.PerWriter, r.MaxInARow)
}

// RunContention has writers Writers append appends entries each to one
// sheet at once, each through its own Writer, and reports how they fared.
// Writer w's i-th entry sets row w, column i to the string "w/i", so a
// reader can check that every append landed exactly once. It is the
// fairness check of the test suites and of `make e2e` (a hot sheet).
func (c *Client) RunContention(ctx context.Context, sheet string, writers, appends int) (ContentionReport, error) {
	r := ContentionReport{Writers: writers, Appends: appends, PerWriter: make([]int, writers)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			wr := c.Writer(sheet, 0)
			for i := range appends {
				e := cell.Entry{Row: uint32(w), Column: uint32(i), Cell: cell.Cell{Value: cell.StringValue(fmt.Sprintf("%d/%d", w, i))}}
				if _, err := wr.Append(ctx, e); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("writer %d, append %d: %w", w, i, err)
					}
					mu.Unlock()
					break
				}
			}
			mu.Lock()
			r.Landed += wr.Stats.Appends
			r.Conflicts += wr.Stats.Conflicts
			r.PerWriter[w] = wr.Stats.Conflicts
			r.MaxInARow = max(r.MaxInARow, wr.Stats.MaxConflictsInARow)
			mu.Unlock()
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	return r, first
}

// CheckContention reads the sheet back and checks that RunContention's
// appends are all there, each exactly once.
func (c *Client) CheckContention(ctx context.Context, sheet string, writers, appends int) error {
	seen := map[[2]uint32]bool{}
	for page, err := range eventlog.Pages(ctx, c.Log(sheet), eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil {
			return err
		}
		for id, e := range page.All() {
			ce, err := cell.DecodeEntry(e.Body, cell.Lenient)
			if err != nil {
				return fmt.Errorf("entry %d: %w", id, err)
			}
			k := [2]uint32{ce.Row, ce.Column}
			if want := fmt.Sprintf("%d/%d", ce.Row, ce.Column); ce.Value.StringVal() != want || seen[k] {
				return fmt.Errorf("entry %d is %s: not an append of the run, or one appended twice", id, e.Body)
			}
			seen[k] = true
		}
	}
	if len(seen) != writers*appends {
		return fmt.Errorf("the log holds %d of the %d appends", len(seen), writers*appends)
	}
	return nil
}
