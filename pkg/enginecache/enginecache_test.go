package enginecache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/internal/heaptest"
	"github.com/sheetlog/sheetlog/pkg/a1"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// stores are memory stores shared by every engine a test builds.
type stores struct {
	logs  *logmem.Store
	blobs *blobmem.Store
	made  atomic.Int64
}

func newStores() *stores {
	return &stores{logs: logmem.NewStore(logmem.Options{}), blobs: blobmem.New(blobmem.Options{})}
}

func (s *stores) factory(sheet string) (*spreadsheet.Engine, error) {
	s.made.Add(1)
	log, err := s.logs.Log(sheet)
	if err != nil {
		return nil, err
	}
	root, err := s.blobs.Sheet(sheet)
	if err != nil {
		return nil, err
	}
	return spreadsheet.New(sheet, log, root, nil, spreadsheet.Options{})
}

// fill appends n cells to sheet's log directly.
func (s *stores) fill(t *testing.T, sheet string, n int) {
	t.Helper()
	log, err := s.logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		v, _ := cell.NumberValue(float64(i))
		e := cell.Entry{Row: uint32(i), Column: 0, Cell: cell.Cell{Value: v}}
		if _, err := log.AddEntry(ctx, eventlog.SequenceID(i), eventlog.Entry{Body: e.AppendJSON(nil)}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// load makes the engine read its sheet, so its footprint is real.
func load(e *spreadsheet.Engine) error {
	_, err := e.Range(context.Background(), a1.Range{Row1: 9, Col1: 9})
	return err
}

func TestSingleFlight(t *testing.T) {
	var calls atomic.Int64
	gate := make(chan struct{})
	s := newStores()
	c := enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
		calls.Add(1)
		<-gate
		return s.factory(sheet)
	}, enginecache.Options{})

	const n = 32
	got := make([]*spreadsheet.Engine, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				got[i], err = c.Get(context.Background(), "s1")
			} else {
				err = c.Do(context.Background(), "s1", func(e *spreadsheet.Engine) error { got[i] = e; return nil })
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	// Let every goroutine reach the cache before the factory returns.
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("factory called %d times, want 1", calls.Load())
	}
	for i := range got {
		if got[i] == nil || got[i] != got[0] {
			t.Fatalf("caller %d got engine %p, caller 0 got %p", i, got[i], got[0])
		}
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d", c.Len())
	}
}

func TestFactoryErrorIsSharedAndNotCached(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	gate := make(chan struct{})
	s := newStores()
	c := enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
		if calls.Add(1) == 1 {
			<-gate
			return nil, boom
		}
		return s.factory(sheet)
	}, enginecache.Options{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := c.Get(context.Background(), "s1")
			errc <- err
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(errc)
	for err := range errc {
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("a failed creation was cached")
	}
	if _, err := c.Get(context.Background(), "s1"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if calls.Load() != 2 {
		t.Fatalf("factory calls = %d, want 2", calls.Load())
	}
}

func TestPanickingFactoryReleasesWaiters(t *testing.T) {
	gate := make(chan struct{})
	c := enginecache.New(func(string) (*spreadsheet.Engine, error) {
		<-gate
		panic("factory bug")
	}, enginecache.Options{})
	waiter := make(chan error, 1)
	go func() {
		defer func() { _ = recover() }()
		_, _ = c.Get(context.Background(), "s1")
	}()
	time.Sleep(10 * time.Millisecond)
	go func() {
		_, err := c.Get(context.Background(), "s1")
		waiter <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(gate)
	select {
	case err := <-waiter:
		if err == nil {
			t.Fatal("waiter got no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter blocked after the factory panicked")
	}
}

func TestWaiterHonoursContext(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s := newStores()
	c := enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
		<-gate
		return s.factory(sheet)
	}, enginecache.Options{})
	go func() { _, _ = c.Get(context.Background(), "s1") }()
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := c.Do(ctx, "s1", func(*spreadsheet.Engine) error { t.Error("fn ran"); return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestEvictionByCount(t *testing.T) {
	s := newStores()
	var evicted []string
	c := enginecache.New(s.factory, enginecache.Options{
		MaxEngines: 3,
		OnEvict:    func(sheet string, _ *spreadsheet.Engine) { evicted = append(evicted, sheet) },
	})
	ctx := context.Background()
	get := func(sheet string) *spreadsheet.Engine {
		t.Helper()
		e, err := c.Get(ctx, sheet)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a := get("a")
	get("b")
	get("c")
	if get("a") != a {
		t.Fatal("a hit returned another engine")
	}
	get("d") // evicts b, the least recently used
	if want := []string{"d", "a", "c"}; !slices.Equal(c.Sheets(), want) {
		t.Fatalf("Sheets = %v, want %v", c.Sheets(), want)
	}
	if !slices.Equal(evicted, []string{"b"}) {
		t.Fatalf("evicted %v", evicted)
	}
	get("b")
	get("e")
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	if st := c.Stats(); st.Evictions != 3 || st.Misses != 6 || st.Hits != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s.made.Load() != 6 {
		t.Fatalf("made %d engines", s.made.Load())
	}
}

func TestEvictionByMemory(t *testing.T) {
	s := newStores()
	for _, sh := range []string{"a", "b", "c", "d"} {
		s.fill(t, sh, 100)
	}
	// Measure one loaded engine to size the budget.
	probe, _ := s.factory("a")
	if err := load(probe); err != nil {
		t.Fatal(err)
	}
	one := probe.Footprint()
	if one == 0 {
		t.Fatal("a loaded engine has no footprint")
	}
	c := enginecache.New(s.factory, enginecache.Options{MaxEngines: 100, MaxBytes: 2*one + one/2})
	ctx := context.Background()
	for _, sh := range []string{"a", "b", "c"} {
		if err := c.Do(ctx, sh, load); err != nil {
			t.Fatal(err)
		}
		if c.Bytes() > 2*one+one/2 {
			t.Fatalf("after %s: Bytes %d over the budget", sh, c.Bytes())
		}
	}
	if want := []string{"c", "b"}; !slices.Equal(c.Sheets(), want) {
		t.Fatalf("Sheets = %v, want %v", c.Sheets(), want)
	}
	if c.Bytes() != 2*one {
		t.Fatalf("Bytes = %d, want %d", c.Bytes(), 2*one)
	}
	// An engine that is not loaded yet costs only its own struct.
	d, err := c.Get(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	idle, _ := s.factory("d")
	if c.Len() != 3 || c.Bytes() != 2*one+idle.Footprint() {
		t.Fatalf("after Get d: Len %d Bytes %d", c.Len(), c.Bytes())
	}
	// Used outside Do, as the worker pool does, it is measured as soon
	// as it loads, and b goes at once.
	if err := load(d); err != nil {
		t.Fatal(err)
	}
	if want := []string{"d", "c"}; !slices.Equal(c.Sheets(), want) || c.Bytes() != 2*one {
		t.Fatalf("Sheets = %v, want %v; %d bytes", c.Sheets(), want, c.Bytes())
	}
	// Using c through Do measures it (no change) and keeps both.
	if err := c.Do(ctx, "c", load); err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "d"}; !slices.Equal(c.Sheets(), want) || c.Bytes() != 2*one {
		t.Fatalf("Sheets = %v, want %v; %d bytes", c.Sheets(), want, c.Bytes())
	}
	// An engine bigger than the whole budget is dropped after its use.
	s.fill(t, "big", 400)
	if err := c.Do(ctx, "big", load); err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "d"}; !slices.Equal(c.Sheets(), want) || c.Bytes() != 2*one {
		t.Fatalf("after big: Sheets = %v (want %v), %d bytes", c.Sheets(), want, c.Bytes())
	}
}

func TestPinnedEnginesAreNotEvicted(t *testing.T) {
	s := newStores()
	c := enginecache.New(s.factory, enginecache.Options{MaxEngines: 1})
	ctx := context.Background()
	inside := make(chan *spreadsheet.Engine)
	done := make(chan struct{})
	go func() {
		_ = c.Do(ctx, "a", func(e *spreadsheet.Engine) error {
			inside <- e
			<-done
			return nil
		})
	}()
	a := <-inside
	for _, sh := range []string{"b", "c"} {
		if _, err := c.Get(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Get(ctx, "a")
	if err != nil || got != a {
		t.Fatalf("a was evicted while in use")
	}
	close(done)
	// Once released, the cache shrinks back to its bound.
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() > 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d after release", c.Len())
	}
}

func TestRemove(t *testing.T) {
	s := newStores()
	c := enginecache.New(s.factory, enginecache.Options{})
	ctx := context.Background()
	a, _ := c.Get(ctx, "a")
	c.Remove("a")
	c.Remove("never")
	if c.Len() != 0 {
		t.Fatal("not removed")
	}
	if b, _ := c.Get(ctx, "a"); b == a {
		t.Fatal("Remove kept the engine")
	}
}

// TestConcurrentUse hammers a small cache from many goroutines (run it
// with -race) and checks the bounds and the accounting afterwards.
func TestConcurrentUse(t *testing.T) {
	s := newStores()
	sheets := make([]string, 12)
	for i := range sheets {
		sheets[i] = fmt.Sprintf("s%d", i)
		s.fill(t, sheets[i], 20+i*5)
	}
	probe, _ := s.factory("s5")
	_ = load(probe)
	budget := 4 * probe.Footprint()
	c := enginecache.New(s.factory, enginecache.Options{MaxEngines: 5, MaxBytes: budget})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 100 {
				sh := sheets[rng.IntN(len(sheets))]
				var err error
				if rng.IntN(4) == 0 {
					_, err = c.Get(context.Background(), sh)
				} else {
					err = c.Do(context.Background(), sh, func(e *spreadsheet.Engine) error {
						if e.Sheet() != sh {
							return fmt.Errorf("engine of %s for %s", e.Sheet(), sh)
						}
						return load(e)
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 5 || c.Bytes() > budget {
		t.Fatalf("bounds broken: %d engines, %d bytes (budget %d)", c.Len(), c.Bytes(), budget)
	}
	// Bytes is the sum of what was measured for the engines still cached.
	sum := 0
	for _, sh := range c.Sheets() {
		e, _ := c.Get(context.Background(), sh)
		sum += e.Footprint()
	}
	if sum < c.Bytes() {
		t.Fatalf("accounted %d bytes, engines hold %d", c.Bytes(), sum)
	}
}

// TestReportedBytesMatchTheHeap: engines used through Get alone (as the
// worker pool uses them) and through Do are measured as they load, and
// the cache's Bytes stays within 25 % of the heap they really hold, for
// small numbers, long strings and long formats.
func TestReportedBytesMatchTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of megabytes")
	}
	long := strings.Repeat("f", 30_000)
	for _, tc := range []struct {
		name  string
		cells int
		cell  func(i int) cell.Cell
	}{
		{"small numbers", 4000, func(i int) cell.Cell { v, _ := cell.NumberValue(float64(i)); return cell.Cell{Value: v} }},
		{"long strings", 40, func(i int) cell.Cell { return cell.Cell{Value: cell.StringValue(long)} }},
		{"long formats", 40, func(i int) cell.Cell { return cell.Cell{}.WithFormat(long) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStores()
			const sheets = 20
			for sh := range sheets {
				log, _ := s.logs.Log(fmt.Sprint("s", sh))
				for i := range tc.cells {
					e := cell.Entry{Row: uint32(i / 10), Column: uint32(i % 10), Cell: tc.cell(i)}
					if _, err := log.AddEntry(ctx, eventlog.SequenceID(i), eventlog.Entry{Body: e.AppendJSON(nil)}, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := enginecache.New(s.factory, enginecache.Options{MaxEngines: 100, MaxBytes: 1 << 30})
			before := heaptest.Live()
			for sh := range sheets {
				sheet := fmt.Sprint("s", sh)
				if sh%2 == 0 {
					// The worker pool's path: Get, then use the engine.
					e, err := c.Get(ctx, sheet)
					if err != nil {
						t.Fatal(err)
					}
					if err := load(e); err != nil {
						t.Fatal(err)
					}
				} else if err := c.Do(ctx, sheet, load); err != nil {
					t.Fatal(err)
				}
			}
			grew := heaptest.Live() - before
			got := int64(c.Bytes())
			runtime.KeepAlive(c)
			t.Logf("cache reports %d bytes, the heap grew %d bytes (%.0f%%)", got, grew, 100*float64(got)/float64(grew))
			if got < grew*3/4 || got > grew*5/4 {
				t.Fatalf("cache reports %d bytes for %d loaded sheets, but the heap grew %d bytes", got, sheets, grew)
			}
		})
	}
}
