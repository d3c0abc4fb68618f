package blobstoretest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

var contextTests = []test{
	{"CancelledFailsAndChangesNothing", func(t *testing.T, f *fixture) {
		root := f.sheet("s")
		d := f.dir(root, "d")
		f.write(d, "keep", "k")
		f.fill(root, "b", f.pageSize+1)
		want := f.snapshot(root)
		_, tok := f.token(root)

		cancelled, cancel := context.WithCancel(f.ctx)
		cancel()
		expired, cancel2 := context.WithDeadline(f.ctx, time.Now().Add(-time.Second))
		defer cancel2()
		for _, c := range []struct {
			ctx  context.Context
			want error
		}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			ctx := c.ctx
			calls := map[string]func() error{
				"ReadBlob":            func() error { _, err := d.ReadBlob(ctx, "keep"); return err },
				"WriteBlob new":       func() error { return d.WriteBlob(ctx, "new", []byte("x")) },
				"WriteBlob overwrite": func() error { return d.WriteBlob(ctx, "keep", []byte("x")) },
				"RemoveBlob":          func() error { return d.RemoveBlob(ctx, "keep") },
				"Query":               func() error { _, err := root.Query(ctx, ""); return err },
				"Query(token)":        func() error { _, err := root.Query(ctx, tok); return err },
				"RemoveAll":           func() error { return d.RemoveAll(ctx) },
				"RemoveAll root":      func() error { return root.RemoveAll(ctx) },
			}
			for name, call := range calls {
				if err := call(); !errors.Is(err, c.want) {
					t.Errorf("%s with a done context: %v, want an error matching %v", name, err, c.want)
				}
			}
			// GetDir may do no I/O at all; if it fails, it fails for the
			// context.
			if _, err := root.GetDir(ctx, "d"); err != nil && !errors.Is(err, c.want) {
				t.Errorf("GetDir with a done context: %v, want success or an error matching %v", err, c.want)
			}
		}
		f.wantSnapshot(root, want, "after calls with a done context")
	}},
}

var concurrencyTests = []test{
	{"ParallelWritersAndReaders", func(t *testing.T, f *fixture) {
		const writers, readers, rounds = 6, 3, 20
		root := f.sheet("s")
		// value is writer w's blob for round r: one repeated byte, with a
		// length of its own, so a torn or mixed blob is detectable.
		value := func(w, r int) []byte {
			b := make([]byte, 256+64*w+r)
			for i := range b {
				b[i] = byte('A' + w)
			}
			return b
		}
		valid := func(b []byte) bool {
			if len(b) < 256 {
				return false
			}
			w := int(b[0]) - 'A'
			if w < 0 || w >= writers || len(b)-256-64*w < 0 || len(b)-256-64*w >= rounds {
				return false
			}
			for _, c := range b {
				if c != b[0] {
					return false
				}
			}
			return true
		}
		f.write(root, "shared", string(value(0, 0)))
		churn := f.dir(root, "churn")
		done := make(chan struct{})
		var wgW, wgR sync.WaitGroup
		for w := range writers {
			wgW.Go(func() {
				own := "own-" + string(rune('a'+w))
				sub := f.dir(root, "sub-"+string(rune('a'+w)))
				for r := range rounds {
					if err := root.WriteBlob(f.ctx, own, value(w, r)); err != nil {
						t.Errorf("WriteBlob(%s): %v", own, err)
						return
					}
					if err := root.WriteBlob(f.ctx, "shared", value(w, r)); err != nil {
						t.Errorf("WriteBlob(shared): %v", err)
						return
					}
					if err := sub.WriteBlob(f.ctx, "x", value(w, r)); err != nil {
						t.Errorf("WriteBlob(sub/x): %v", err)
						return
					}
					if err := churn.WriteBlob(f.ctx, own, value(w, r)); err != nil {
						t.Errorf("WriteBlob(churn/%s): %v", own, err)
						return
					}
					got, err := root.ReadBlob(f.ctx, own)
					if err != nil || string(got) != string(value(w, r)) {
						t.Errorf("ReadBlob(%s) after my own write: %d bytes, %v; want my last write", own, len(got), err)
						return
					}
				}
			})
		}
		for range readers {
			wgR.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					got, err := root.ReadBlob(f.ctx, "shared")
					if err != nil || !valid(got) {
						t.Errorf("ReadBlob(shared) during writes: %d bytes, %v; want one whole write", len(got), err)
						return
					}
					if _, _, err := listAll(t, f.ctx, root, f.pageSize); err != nil {
						t.Errorf("Query during writes: %v", err)
						return
					}
					if err := churn.RemoveAll(f.ctx); err != nil {
						t.Errorf("RemoveAll during writes: %v", err)
						return
					}
				}
			})
		}
		wgW.Wait()
		close(done)
		wgR.Wait()
		if t.Failed() {
			return
		}
		for w := range writers {
			own := "own-" + string(rune('a'+w))
			f.wantBlob(root, own, string(value(w, rounds-1)))
			f.wantBlob(f.dir(root, "sub-"+string(rune('a'+w))), "x", string(value(w, rounds-1)))
		}
		got := f.read(root, "shared")
		if !valid([]byte(got)) {
			t.Errorf("shared blob after the writes: %d bytes, not one whole write", len(got))
		}
		// Each writer's last write is the only candidate for "last".
		last := false
		for w := range writers {
			last = last || got == string(value(w, rounds-1))
		}
		if !last {
			t.Errorf("shared blob after the writes is not any writer's last write")
		}
	}},
	{"ParallelHandlesOfOneDirectory", func(t *testing.T, f *fixture) {
		const n = 8
		var g sync.WaitGroup
		for i := range n {
			g.Go(func() {
				d, err := f.store.Sheet("s")
				if err != nil {
					t.Error(err)
					return
				}
				for _, name := range []string{"p", "q"} {
					if d, err = d.GetDir(f.ctx, name); err != nil {
						t.Error(err)
						return
					}
				}
				if err := d.WriteBlob(f.ctx, string(rune('a'+i)), []byte{byte(i)}); err != nil {
					t.Error(err)
				}
			})
		}
		g.Wait()
		var want []string
		for i := range n {
			want = append(want, string(rune('a'+i)))
		}
		f.wantList(f.dir(f.sheet("s"), "p", "q"), want, nil)
	}},
}
