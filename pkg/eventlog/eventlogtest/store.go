package eventlogtest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// pendingLister is the listing that stores offer to worker pools and
// sweepers.
type pendingLister interface {
	Pending(ctx context.Context) ([]eventlog.PendingEntry, error)
}

// RunStore checks an eventlog.Store: sheet ids are validated, a sheet's
// log is the same whichever call opened it, sheets are independent, and,
// when the store has a Pending(ctx) ([]eventlog.PendingEntry, error)
// method, that it lists exactly the entries with pending set. The store
// may be shared with other tests (a table, a directory): the suite uses
// sheet ids of its own and ignores other sheets in the listing.
func RunStore(t *testing.T, store eventlog.Store) {
	prefix := fmt.Sprintf("evtest-%08x", rand.Uint32())
	sheet := func(name string) string { return prefix + "-" + name }
	open := func(t *testing.T, name string) eventlog.EventLog {
		t.Helper()
		l, err := store.Log(name)
		if err != nil {
			t.Fatalf("Log(%q): %v", name, err)
		}
		return l
	}

	t.Run("SheetIDs", func(t *testing.T) {
		for _, bad := range []string{"", ".", "..", "a/b", "../x", "a b", "é", "a\x00", strings.Repeat("a", 65)} {
			if _, err := store.Log(bad); errs.TypeOf(err) != errs.TypeValidation {
				t.Errorf("Log(%q) = %v, want a ValidationError", bad, err)
			}
		}
		for _, good := range []string{sheet("A-z_0.9"), (prefix + strings.Repeat("x", 64))[:64]} {
			open(t, good)
		}
	})
	t.Run("SameSheetSameLog", func(t *testing.T) {
		ctx := t.Context()
		a, b := open(t, sheet("same")), open(t, sheet("same"))
		if _, err := a.AddEntry(ctx, 0, entry(0), nil); err != nil {
			t.Fatal(err)
		}
		_, err := b.AddEntry(ctx, 0, entry(1), nil)
		h := &harness{t: t, ctx: ctx, log: b}
		h.wantConflict(err, "AddEntry(0) through the second handle", 1)
		h.expect(0, entries(0, 1))
	})
	t.Run("SheetsIndependent", func(t *testing.T) {
		ctx := t.Context()
		a, b := open(t, sheet("one")), open(t, sheet("two"))
		ha, hb := &harness{t: t, ctx: ctx, log: a}, &harness{t: t, ctx: ctx, log: b}
		ha.fill(0, 3)
		hb.expect(0, nil)
		hb.add(0, entry(7))
		ha.truncate(2)
		ha.expect(2, entries(2, 3))
		hb.expect(0, []eventlog.Entry{entry(7)})
	})
	t.Run("Pending", func(t *testing.T) {
		lister, ok := store.(pendingLister)
		if !ok {
			t.Logf("%T has no Pending method: nothing to check", store)
			return
		}
		ctx := t.Context()
		began := time.Now()
		mine := func() []eventlog.PendingEntry {
			t.Helper()
			all, err := lister.Pending(ctx)
			if err != nil {
				t.Fatalf("Pending: %v", err)
			}
			var out []eventlog.PendingEntry
			for _, p := range all {
				if strings.HasPrefix(p.Sheet, prefix+"-p") {
					// Since is optional; when a store says it, it is
					// a moment of this test (a minute's leeway for
					// clocks).
					if !p.Since.IsZero() && (p.Since.Before(began.Add(-time.Minute)) || p.Since.After(time.Now().Add(time.Minute))) {
						t.Fatalf("Pending lists %v with Since %v, outside the test (begun %v)", p, p.Since, began)
					}
					p.Since = time.Time{}
					out = append(out, p)
				}
			}
			slices.SortFunc(out, func(a, b eventlog.PendingEntry) int {
				return cmp.Or(strings.Compare(a.Sheet, b.Sheet), cmp.Compare(a.SequenceID, b.SequenceID))
			})
			return out
		}
		want := func(got []eventlog.PendingEntry, w ...eventlog.PendingEntry) {
			t.Helper()
			if !slices.Equal(got, w) {
				t.Fatalf("Pending lists %v, want %v", got, w)
			}
		}
		pe := func(s string, id uint64, wf string) eventlog.PendingEntry {
			return eventlog.PendingEntry{Sheet: sheet(s), SequenceID: eventlog.SequenceID(id), Workflow: wf}
		}
		want(mine())
		a := &harness{t: t, ctx: ctx, log: open(t, sheet("pa"))}
		b := &harness{t: t, ctx: ctx, log: open(t, sheet("pb"))}
		a.fill(0, 2)
		a.add(2, eventlog.Entry{Body: body(2), Metadata: eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}})
		a.fill(3, 6)
		b.add(0, eventlog.Entry{Body: body(0), Metadata: eventlog.Metadata{Pending: "other"}})
		want(mine(), pe("pa", 2, eventlog.WorkflowSnapshot), pe("pb", 0, "other"))

		a.setMetadata(4, eventlog.MetadataUpdate{Pending: eventlog.Set(eventlog.WorkflowSnapshot)})
		want(mine(), pe("pa", 2, eventlog.WorkflowSnapshot), pe("pa", 4, eventlog.WorkflowSnapshot), pe("pb", 0, "other"))

		// A batch's one pending entry is listed like any other.
		b.addBatch(1, []eventlog.Entry{entry(1), {Body: body(2), Metadata: eventlog.Metadata{Pending: "batched"}}, entry(3)})
		want(mine(), pe("pa", 2, eventlog.WorkflowSnapshot), pe("pa", 4, eventlog.WorkflowSnapshot), pe("pb", 0, "other"), pe("pb", 2, "batched"))
		b.setMetadata(2, eventlog.CompleteWorkflow("batched", "2/index"))

		a.setMetadata(2, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "2/index"))
		b.setMetadata(0, eventlog.MetadataUpdate{Pending: eventlog.Set("renamed")})
		want(mine(), pe("pa", 4, eventlog.WorkflowSnapshot), pe("pb", 0, "renamed"))

		a.truncate(5)
		b.setMetadata(0, eventlog.MetadataUpdate{Pending: eventlog.Clear()})
		want(mine())
	})
}
