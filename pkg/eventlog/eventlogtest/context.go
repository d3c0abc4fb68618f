package eventlogtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

func (s *suite) testContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"Cancelled", cancelled}, {"DeadlineExceeded", expired}} {
		t.Run(c.name, func(t *testing.T) {
			h := s.fresh(t)
			want := entries(0, 3)
			want[1].Metadata = eventlog.Metadata{Pending: eventlog.WorkflowSnapshot}
			for i, e := range want {
				h.add(uint64(i), e)
			}
			check := func(what string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s with a done context succeeded", what)
				}
				if !errors.Is(err, c.ctx.Err()) {
					t.Fatalf("%s with a done context: %v (%T) does not wrap %v", what, err, err, c.ctx.Err())
				}
				h.expect(0, want)
			}
			_, err := h.log.AddEntry(c.ctx, 3, entry(3), nil)
			check("AddEntry", err)
			_, err = h.log.AddEntries(c.ctx, 3, entries(3, 6), nil)
			check("AddEntries", err)
			_, err = h.log.SetMetadata(c.ctx, 1, eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, "b1"))
			check("SetMetadata", err)
			_, err = h.log.SetMetadata(c.ctx, 0, eventlog.MetadataUpdate{History: eventlog.Set("h")})
			check("SetMetadata", err)
			check("Truncate", h.log.Truncate(c.ctx, 2))
			_, err = h.log.Query(c.ctx, eventlog.FromStart, eventlog.ToEnd, nil)
			check("Query", err)
			_, err = h.log.Query(c.ctx, eventlog.FromSnapshot, eventlog.ToEnd, known(0))
			check("Query", err)
			// The log still works with a live context.
			h.add(3, entry(3))
		})
	}
}
