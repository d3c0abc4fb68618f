package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// TestFollow: the change feed yields every entry in order as it is
// appended, and ends with the context.
func TestFollow(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	l := c.Log("f")
	if _, err := l.AddEntry(ctx, 0, entry(0, 0, "before"), nil); err != nil {
		t.Fatal(err)
	}
	type got struct {
		id   eventlog.SequenceID
		body string
	}
	ch := make(chan got, 100)
	errc := make(chan error, 1)
	fctx, stop := context.WithCancel(ctx)
	go func() {
		for page, err := range c.Follow(fctx, "f", 0) {
			if err != nil {
				errc <- err
				return
			}
			for id, e := range page.All() {
				ch <- got{id, string(e.Body)}
			}
		}
	}()
	want := []eventlog.Entry{entry(0, 0, "before")}
	next := 0
	expect := func() {
		t.Helper()
		for next < len(want) {
			select {
			case g := <-ch:
				if g.id != eventlog.SequenceID(next) || g.body != string(want[next].Body) {
					t.Fatalf("the feed yielded %d %s, want %d %s", g.id, g.body, next, want[next].Body)
				}
				next++
			case err := <-errc:
				t.Fatalf("the feed ended: %v", err)
			case <-ctx.Done():
				t.Fatalf("the feed yielded %d of %d entries", next, len(want))
			}
		}
	}
	expect()
	before := s.Requests.Load()
	for i := range 3 {
		time.Sleep(50 * time.Millisecond)
		e := entry(1, uint32(i), "live")
		if _, err := l.AddEntry(ctx, eventlog.SequenceID(len(want)), e, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
		expect()
	}
	batch := []eventlog.Entry{entry(2, 0, "b"), entry(2, 1, "b")}
	if _, err := l.AddEntries(ctx, eventlog.SequenceID(len(want)), batch, nil); err != nil {
		t.Fatal(err)
	}
	want = append(want, batch...)
	expect()
	t.Logf("%d requests for 4 appends while following", s.Requests.Load()-before)
	stop()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the feed ended with %v, want the context's end", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the feed did not end with its context")
	}
	// A permanent failure ends the feed at once.
	for _, err := range c.Follow(ctx, "no/such", 0) {
		if errs.TypeOf(err) != errs.TypeValidation {
			t.Fatalf("Follow of a bad sheet id: %v, want a ValidationError", err)
		}
	}
}

// TestFollowOldServer: a server from before the change feed refuses
// "wait"; Follow then polls, and still yields every entry.
func TestFollowOldServer(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !r.URL.Query().Has("wait") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"ValidationError","message":"query parameter \"wait\" is not known; this endpoint takes [start end snapshotId]"}`))
		return true
	})
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		for i := range 3 {
			time.Sleep(100 * time.Millisecond)
			if _, err := c.Log("old").AddEntry(ctx, eventlog.SequenceID(i), entry(0, uint32(i), "x"), nil); err != nil {
				t.Error(err)
			}
		}
	}()
	n := 0
	for page, err := range c.Follow(ctx, "old", 0) {
		if err != nil {
			t.Fatalf("after %d entries: %v", n, err)
		}
		n += len(page.Entries)
		if n == 3 {
			break
		}
	}
}
