package boltlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "log.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Verify(context.Background()); err != nil && !errors.Is(err, errClosed) {
			t.Errorf("Verify at cleanup: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func mustLog(t testing.TB, s *Store, sheet string) eventlog.EventLog {
	t.Helper()
	l, err := s.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func body(n int) []byte { return fmt.Appendf(nil, `{"type":"T","n":%d}`, n) }

func add(t testing.TB, l eventlog.EventLog, id int, md eventlog.Metadata) {
	t.Helper()
	if _, err := l.AddEntry(context.Background(), eventlog.SequenceID(id), eventlog.Entry{Body: body(id), Metadata: md}, nil); err != nil {
		t.Fatalf("AddEntry(%d): %v", id, err)
	}
}

// all reads the whole log, page by page.
func all(t testing.TB, l eventlog.EventLog, from eventlog.From) (eventlog.SequenceID, []eventlog.Entry) {
	t.Helper()
	var out []eventlog.Entry
	p, err := l.Query(context.Background(), from, eventlog.ToEnd, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := p.Start
	for {
		out = append(out, p.Entries...)
		if p.Complete {
			return start, out
		}
		if p, err = l.Query(context.Background(), eventlog.FromID(p.End), eventlog.ToEnd, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func isType[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

func TestAppendQueryConflict(t *testing.T) {
	s := openTemp(t, Options{PageSize: 3, PageBytes: 40})
	l := mustLog(t, s, "a")
	ctx := t.Context()
	for i := range 10 {
		add(t, l, i, eventlog.Metadata{})
	}
	for _, id := range []eventlog.SequenceID{0, 9, 11, 1 << 40} {
		_, err := l.AddEntry(ctx, id, eventlog.Entry{Body: body(0)}, nil)
		var c *errs.ConflictError
		if !errors.As(err, &c) || c.NextSequenceID != 10 {
			t.Fatalf("AddEntry(%d) = %v, want ConflictError next 10", id, err)
		}
	}
	// Another sheet whose name extends this one is a separate log.
	add(t, mustLog(t, s, "ab"), 0, eventlog.Metadata{})

	p, err := l.Query(ctx, eventlog.FromID(2), eventlog.ToID(100), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 40 bytes hold two bodies of 16 bytes, not three.
	if p.Start != 2 || p.End != 4 || p.Complete || len(p.Entries) != 2 || string(p.Entries[1].Body) != string(body(3)) {
		t.Fatalf("page = %+v", p)
	}
	start, got := all(t, l, eventlog.FromStart)
	if start != 0 || len(got) != 10 {
		t.Fatalf("all: start %d, %d entries", start, len(got))
	}
	for i, e := range got {
		if string(e.Body) != string(body(i)) {
			t.Fatalf("entry %d = %s", i, e.Body)
		}
	}
	if _, err := l.Query(ctx, eventlog.FromID(11), eventlog.ToEnd, nil); !isType[*errs.RangeError](err) {
		t.Fatalf("query past next: %v", err)
	}
	if p, err := l.Query(ctx, eventlog.FromID(10), eventlog.ToEnd, nil); err != nil || !p.Complete || p.Start != 10 || p.End != 10 {
		t.Fatalf("query at next: %+v %v", p, err)
	}
	if p, err := l.Query(ctx, eventlog.FromID(5), eventlog.ToID(3), nil); err != nil || !p.Complete || p.End != 5 || len(p.Entries) != 0 {
		t.Fatalf("query end below start: %+v %v", p, err)
	}
}

func TestValidation(t *testing.T) {
	s := openTemp(t, Options{})
	for _, sheet := range []string{"", "..", "a/b", "a\x00b", strings.Repeat("x", 65)} {
		if _, err := s.Log(sheet); !isType[*errs.ValidationError](err) {
			t.Errorf("Log(%q) = %v", sheet, err)
		}
	}
	l := mustLog(t, s, "v")
	for _, b := range []string{``, `[]`, `{}`, `{"type":"X","pending":"snapshot"}`, `{"type":"X"`} {
		if _, err := l.AddEntry(t.Context(), 0, eventlog.Entry{Body: []byte(b)}, nil); !isType[*errs.ValidationError](err) {
			t.Errorf("AddEntry(%q) = %v", b, err)
		}
	}
	if _, err := l.SetMetadata(t.Context(), 0, eventlog.MetadataUpdate{Snapshot: eventlog.Set("")}); !isType[*errs.ValidationError](err) {
		t.Errorf("SetMetadata(set empty) = %v", err)
	}
}

func TestMetadataIndexesAndSnapshots(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	a, b := mustLog(t, s, "a"), mustLog(t, s, "b")
	for i := range 10 {
		md := eventlog.Metadata{}
		if i%3 == 0 {
			md.Pending = eventlog.WorkflowSnapshot
		}
		add(t, a, i, md)
		add(t, b, i, eventlog.Metadata{})
	}
	pending := func() []string {
		t.Helper()
		ps, err := s.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s/%d/%s", p.Sheet, p.SequenceID, p.Workflow))
		}
		return out
	}
	want := []string{"a/0/snapshot", "a/3/snapshot", "a/6/snapshot", "a/9/snapshot"}
	if got := pending(); !slices.Equal(got, want) {
		t.Fatalf("pending = %v", got)
	}
	complete := func(l eventlog.EventLog, id int, blob string) bool {
		t.Helper()
		ok, err := l.SetMetadata(ctx, eventlog.SequenceID(id), eventlog.CompleteWorkflow(eventlog.WorkflowSnapshot, blob))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !complete(a, 3, "s3") || !complete(a, 6, "s6") || complete(a, 6, "again") || complete(a, 5, "never") {
		t.Fatal("conditional completion")
	}
	if got := pending(); !slices.Equal(got, []string{"a/0/snapshot", "a/9/snapshot"}) {
		t.Fatalf("pending after completion = %v", got)
	}
	snapAt := func(l eventlog.EventLog, known eventlog.SequenceID) (eventlog.SequenceID, *eventlog.SnapshotRef) {
		t.Helper()
		p, err := l.Query(ctx, eventlog.FromSnapshot, eventlog.ToEnd, eventlog.Known(known))
		if err != nil {
			t.Fatal(err)
		}
		return p.Start, p.LastSnapshot
	}
	if start, last := snapAt(a, 0); start != 6 || last == nil || *last != (eventlog.SnapshotRef{SequenceID: 6, BlobID: "s6"}) {
		t.Fatalf("FromSnapshot = %d %+v", start, last)
	}
	if start, last := snapAt(a, 6); start != 6 || last != nil {
		t.Fatalf("FromSnapshot knowing 6 = %d %+v", start, last)
	}
	if start, last := snapAt(b, 0); start != 0 || last != nil {
		t.Fatalf("no snapshot: %d %+v", start, last)
	}
	// Clearing the newest snapshot falls back to the one before.
	if ok, err := a.SetMetadata(ctx, 6, eventlog.MetadataUpdate{Snapshot: eventlog.Clear(), History: eventlog.Set("h")}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if start, last := snapAt(a, 0); start != 3 || last == nil || last.BlobID != "s3" {
		t.Fatalf("after clearing 6: %d %+v", start, last)
	}
	// AddEntry reports the newest snapshot, including its own.
	last, err := a.AddEntry(ctx, 10, eventlog.Entry{Body: body(10)}, eventlog.Known(0))
	if err != nil || last == nil || last.SequenceID != 3 {
		t.Fatalf("AddEntry lastSnapshot = %+v %v", last, err)
	}
	last, err = a.AddEntry(ctx, 11, eventlog.Entry{Body: body(11), Metadata: eventlog.Metadata{Snapshot: "s11"}}, eventlog.Known(3))
	if err != nil || last == nil || *last != (eventlog.SnapshotRef{SequenceID: 11, BlobID: "s11"}) {
		t.Fatalf("AddEntry own snapshot = %+v %v", last, err)
	}
	if _, err := a.SetMetadata(ctx, 12, eventlog.MetadataUpdate{}); !isType[*errs.RangeError](err) {
		t.Fatalf("SetMetadata past end: %v", err)
	}

	// Truncation drops entries and their index keys, and keeps next.
	if err := a.Truncate(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if got := pending(); !slices.Equal(got, []string{"a/9/snapshot"}) {
		t.Fatalf("pending after truncate = %v", got)
	}
	if _, err := a.SetMetadata(ctx, 3, eventlog.MetadataUpdate{}); !isType[*errs.RangeError](err) {
		t.Fatalf("SetMetadata below first: %v", err)
	}
	if err := a.Truncate(ctx, 3); !isType[*errs.RangeError](err) {
		t.Fatalf("Truncate below first: %v", err)
	}
	if err := a.Truncate(ctx, 13); !isType[*errs.RangeError](err) {
		t.Fatalf("Truncate past next: %v", err)
	}
	if err := a.Truncate(ctx, 12); err != nil {
		t.Fatal(err)
	}
	if start, last := snapAt(a, 0); start != 12 || last != nil {
		t.Fatalf("after truncating every snapshot: %d %+v", start, last)
	}
	if _, err := a.AddEntry(ctx, 11, eventlog.Entry{Body: body(0)}, nil); !isType[*errs.ConflictError](err) {
		t.Fatalf("ids are never reused: %v", err)
	}
	add(t, a, 12, eventlog.Metadata{})
	if sheets, err := s.Sheets(ctx); err != nil || !slices.Equal(sheets, []string{"a", "b"}) {
		t.Fatalf("Sheets = %v %v", sheets, err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "log.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, s, "x")
	for i := range 50 {
		add(t, l, i, eventlog.Metadata{Pending: map[bool]string{true: "snapshot"}[i%10 == 0]})
	}
	if _, err := l.SetMetadata(t.Context(), 20, eventlog.CompleteWorkflow("snapshot", "blob20")); err != nil {
		t.Fatal(err)
	}
	if err := l.Truncate(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	_, before := all(t, l, eventlog.FromStart)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.AddEntry(t.Context(), 50, eventlog.Entry{Body: body(50)}, nil); !isType[*errs.StorageError](err) || !errors.Is(err, errClosed) {
		t.Fatalf("AddEntry after Close = %v", err)
	}
	if _, err := l.Query(t.Context(), eventlog.FromStart, eventlog.ToEnd, nil); !isType[*errs.StorageError](err) {
		t.Fatalf("Query after Close = %v", err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	l = mustLog(t, s, "x")
	start, after := all(t, l, eventlog.FromStart)
	if start != 5 || len(after) != len(before) {
		t.Fatalf("after reopen: start %d, %d entries, want 5, %d", start, len(after), len(before))
	}
	for i := range after {
		if string(after[i].Body) != string(before[i].Body) || after[i].Metadata != before[i].Metadata {
			t.Fatalf("entry %d: %+v, was %+v", i+5, after[i], before[i])
		}
	}
	if p, err := l.Query(t.Context(), eventlog.FromSnapshot, eventlog.ToEnd, nil); err != nil || p.Start != 20 {
		t.Fatalf("FromSnapshot after reopen: %d %v", p.Start, err)
	}
	add(t, l, 50, eventlog.Metadata{})
}

// A second process (or a second Open in this one: flock locks are per
// open file) waits LockTimeout and gets a clear error.
func TestLockedFile(t *testing.T) {
	s := openTemp(t, Options{})
	began := time.Now()
	_, err := Open(s.Path(), Options{LockTimeout: 200 * time.Millisecond})
	if !isType[*errs.StorageError](err) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open = %v", err)
	}
	if d := time.Since(began); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("second Open gave up after %v", d)
	}
	// The first store is unharmed.
	add(t, mustLog(t, s, "a"), 0, eventlog.Metadata{})
}

func TestNotABoltFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("other/9")) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if _, err := Open(path, Options{}); !isType[*errs.StorageError](err) || !strings.Contains(err.Error(), "other/9") {
		t.Fatalf("Open of another format = %v", err)
	}
}

// holdWriter takes bbolt's writer lock so that the committer blocks in
// its next transaction. The returned func releases it.
func holdWriter(t *testing.T, s *Store) func() {
	t.Helper()
	tx, err := s.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { _ = tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

func queued(s *Store) int {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return len(s.c.queue)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A write cancelled while it waits in the queue is withdrawn and never
// applied; one cancelled after the committer took it reports the outcome
// of its commit, which here is success.
func TestCancelWhileQueued(t *testing.T) {
	s := openTemp(t, Options{})
	l := mustLog(t, s, "c")
	release := holdWriter(t, s)

	ctxA, cancelA := context.WithCancel(t.Context())
	errA := make(chan error, 1)
	go func() {
		_, err := l.AddEntry(ctxA, 0, eventlog.Entry{Body: body(0)}, nil)
		errA <- err
	}()
	// A is taken by the committer, which then blocks on the writer lock.
	waitFor(t, "the committer to take A", func() bool { return s.c.claimed.Load() == 1 })

	ctxB, cancelB := context.WithCancel(t.Context())
	errB := make(chan error, 1)
	go func() {
		_, err := l.AddEntry(ctxB, 1, eventlog.Entry{Body: body(1)}, nil)
		errB <- err
	}()
	waitFor(t, "B to queue", func() bool { return queued(s) == 1 })
	cancelB()
	if err := <-errB; !isType[*errs.StorageError](err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("B = %v, want a StorageError wrapping context.Canceled", err)
	}

	cancelA()
	select {
	case err := <-errA:
		t.Fatalf("A returned %v before its commit finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-errA; err != nil {
		t.Fatalf("A = %v, want success: it was committed", err)
	}
	start, got := all(t, l, eventlog.FromStart)
	if start != 0 || len(got) != 1 || string(got[0].Body) != string(body(0)) {
		t.Fatalf("log = %d %q", start, got)
	}
}

// A bbolt error inside one write of a batch fails that write only.
func TestFatalErrorFailsOnlyItsWrite(t *testing.T) {
	s := openTemp(t, Options{})
	l := mustLog(t, s, "f")
	release := holdWriter(t, s)
	ctx := t.Context()

	results := make(chan string, 10)
	go func() { // D: taken alone while the writer is held
		_, err := l.AddEntry(ctx, 0, eventlog.Entry{Body: body(0)}, nil)
		results <- fmt.Sprint("D ", err)
	}()
	waitFor(t, "D to be taken", func() bool { return s.c.claimed.Load() == 1 })
	go func() {
		_, err := l.AddEntry(ctx, 1, eventlog.Entry{Body: body(1)}, nil)
		results <- fmt.Sprint("A ", err)
	}()
	waitFor(t, "A to queue", func() bool { return queued(s) == 1 })
	go func() {
		err := s.update(ctx, 1, func(tx *bolt.Tx) (error, error) {
			// Change something, then fail: the whole transaction must go.
			if err := tx.Bucket(bucketHeads).Put([]byte("f"), head{next: 99}.encode()); err != nil {
				return nil, err
			}
			return nil, tx.Bucket(bucketHeads).Put(nil, nil)
		})
		results <- fmt.Sprint("F ", isType[*errs.StorageError](err))
	}()
	waitFor(t, "F to queue", func() bool { return queued(s) == 2 })
	go func() {
		_, err := l.AddEntry(ctx, 2, eventlog.Entry{Body: body(2)}, nil)
		results <- fmt.Sprint("B ", err)
	}()
	waitFor(t, "B to queue", func() bool { return queued(s) == 3 })
	release()
	var got []string
	for range 4 {
		got = append(got, <-results)
	}
	slices.Sort(got)
	if want := []string{"A <nil>", "B <nil>", "D <nil>", "F true"}; !slices.Equal(got, want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	if _, entries := all(t, l, eventlog.FromStart); len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
}

// Close lets the writes already queued finish.
func TestCloseDrainsQueue(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "log.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 8 {
		l := mustLog(t, s, fmt.Sprintf("s%d", i))
		wg.Go(func() {
			_, err := l.AddEntry(t.Context(), 0, eventlog.Entry{Body: body(i)}, nil)
			errc <- err
		})
	}
	waitFor(t, "the writes to queue", func() bool { return int(s.c.claimed.Load())+queued(s) == 8 })
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	waitFor(t, "Close to stop intake", func() bool {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		return s.c.closed
	})
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(s.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sheets, err := s.Sheets(t.Context()); err != nil || len(sheets) != 8 {
		t.Fatalf("sheets after reopen: %v %v", sheets, err)
	}
}

// Concurrent appenders on shared and separate sheets: one winner per id,
// nothing acknowledged lost, the file consistent.
func TestConcurrentAppenders(t *testing.T) {
	s := openTemp(t, Options{})
	const writers, per = 8, 60
	var (
		mu   sync.Mutex
		acks = map[string]map[eventlog.SequenceID]string{}
		wg   sync.WaitGroup
	)
	for w := range writers {
		sheet := fmt.Sprintf("s%d", w%3)
		l := mustLog(t, s, sheet)
		wg.Go(func() {
			var next eventlog.SequenceID
			for i := 0; i < per; {
				b := fmt.Sprintf(`{"type":"T","w":%d,"i":%d}`, w, i)
				_, err := l.AddEntry(t.Context(), next, eventlog.Entry{Body: []byte(b)}, nil)
				var c *errs.ConflictError
				switch {
				case err == nil:
					mu.Lock()
					if acks[sheet] == nil {
						acks[sheet] = map[eventlog.SequenceID]string{}
					}
					if prev, dup := acks[sheet][next]; dup {
						t.Errorf("%s/%d acknowledged twice: %s and %s", sheet, next, prev, b)
					}
					acks[sheet][next] = b
					mu.Unlock()
					next++
					i++
				case errors.As(err, &c):
					next = eventlog.SequenceID(c.NextSequenceID)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for sheet, m := range acks {
		_, got := all(t, mustLog(t, s, sheet), eventlog.FromStart)
		if len(got) != len(m) {
			t.Fatalf("%s: %d entries, %d acknowledged", sheet, len(got), len(m))
		}
		for id, b := range m {
			if string(got[id].Body) != b {
				t.Fatalf("%s/%d = %s, acknowledged %s", sheet, id, got[id].Body, b)
			}
		}
	}
}

// After a commit fails, the store refuses every call until it is
// reopened; the failed write is not there afterwards.
func TestFailedCommitBreaksStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, s, "b")
	add(t, l, 0, eventlog.Metadata{})
	// bbolt refuses to grow the file past MaxSize, in the commit. Set
	// before the next write: the committer reads it after taking it.
	s.db.MaxSize = 1
	big := fmt.Appendf(nil, `{"type":"T","pad":"%s"}`, strings.Repeat("x", 1<<20))
	if _, err := l.AddEntry(t.Context(), 1, eventlog.Entry{Body: big}, nil); !isType[*errs.StorageError](err) {
		t.Fatalf("AddEntry past MaxSize = %v", err)
	}
	if _, err := l.AddEntry(t.Context(), 1, eventlog.Entry{Body: body(1)}, nil); !isType[*errs.StorageError](err) || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("AddEntry after a failed commit = %v", err)
	}
	if _, err := l.Query(t.Context(), eventlog.FromStart, eventlog.ToEnd, nil); !isType[*errs.StorageError](err) {
		t.Fatalf("Query after a failed commit = %v", err)
	}
	if _, err := s.Pending(t.Context()); !isType[*errs.StorageError](err) {
		t.Fatalf("Pending after a failed commit = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Verify(t.Context()); err != nil {
		t.Fatal(err)
	}
	l = mustLog(t, s, "b")
	if _, got := all(t, l, eventlog.FromStart); len(got) != 1 {
		t.Fatalf("%d entries after reopen, want 1", len(got))
	}
	add(t, l, 1, eventlog.Metadata{})
}

// A batch is one request of the group commit: alone, it is one
// transaction (one fsync); queued with other writes, it shares their
// transaction and lands whole, before the writes queued after it; and a
// write that fails in bbolt beside it does not split it.
func TestBatchIsOneCommit(t *testing.T) {
	s := openTemp(t, Options{})
	l := mustLog(t, s, "b")
	ctx := t.Context()
	batch := func(from, n int) []eventlog.Entry {
		es := make([]eventlog.Entry, n)
		for i := range es {
			es[i].Body = body(from + i)
		}
		return es
	}
	claimed0, commits0 := s.c.claimed.Load(), s.c.batches.Load()
	if _, err := l.AddEntries(ctx, 0, batch(0, eventlog.MaxBatch), nil); err != nil {
		t.Fatal(err)
	}
	if c, n := s.c.claimed.Load()-claimed0, s.c.batches.Load()-commits0; c != 1 || n != 1 {
		t.Fatalf("a batch of %d entries took %d requests in %d transactions, want 1 in 1", eventlog.MaxBatch, c, n)
	}

	next := eventlog.MaxBatch
	release := holdWriter(t, s)
	results := make(chan string, 10)
	go func() { // taken alone while the writer is held
		_, err := l.AddEntry(ctx, eventlog.SequenceID(next), eventlog.Entry{Body: body(next)}, nil)
		results <- fmt.Sprint("first ", err)
	}()
	waitFor(t, "the first write to be taken", func() bool { return s.c.claimed.Load()-claimed0 == 2 })
	queue := func(name string, call func() any) {
		n := queued(s)
		go func() { results <- fmt.Sprint(name, " ", call()) }()
		waitFor(t, name+" to queue", func() bool { return queued(s) == n+1 })
	}
	queue("batch", func() any {
		_, err := l.AddEntries(ctx, eventlog.SequenceID(next+1), batch(next+1, 5), nil)
		return err
	})
	queue("racer", func() any {
		_, err := l.AddEntry(ctx, eventlog.SequenceID(next+1), eventlog.Entry{Body: body(1000)}, nil)
		return errs.TypeOf(err)
	})
	queue("fatal", func() any {
		err := s.update(ctx, 1, func(tx *bolt.Tx) (error, error) {
			return nil, tx.Bucket(bucketHeads).Put(nil, nil)
		})
		return isType[*errs.StorageError](err)
	})
	queue("after", func() any {
		_, err := l.AddEntry(ctx, eventlog.SequenceID(next+6), eventlog.Entry{Body: body(next + 6)}, nil)
		return err
	})
	release()
	var got []string
	for range 5 {
		got = append(got, <-results)
	}
	slices.Sort(got)
	want := []string{"after <nil>", "batch <nil>", "fatal true", "first <nil>", "racer " + errs.TypeConflict}
	if !slices.Equal(got, want) {
		t.Fatalf("results %q, want %q", got, want)
	}
	_, entries := all(t, l, eventlog.FromStart)
	if len(entries) != next+7 {
		t.Fatalf("%d entries, want %d", len(entries), next+7)
	}
	for i, e := range entries {
		if string(e.Body) != string(body(i)) {
			t.Fatalf("entry %d is %s", i, e.Body)
		}
	}
}
