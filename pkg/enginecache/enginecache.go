// Package enginecache keeps spreadsheet engines per sheet, so that a
// server or a warm Lambda does not reload a sheet from its snapshot and
// log on every request.
//
// The cache is a least-recently-used list bounded twice: by the number of
// engines and by their approximate memory (spreadsheet.Engine.Footprint).
// Creation is single-flight: concurrent requests for a sheet that is not
// cached wait for one engine instead of each building their own, because
// two engines of one sheet in one process would each hold the sheet's
// cells and race each other's appends.
//
// # Measuring memory
//
// An engine's footprint changes inside the calls made on it (loading its
// sheet, appending, catching up, building a snapshot), whichever way the
// caller got it: through Do, or through Get as the worker pool does with
// spreadsheet.WorkflowHandler. So the cache does not wait for the engine
// to come back: it registers with spreadsheet.Engine.OnFootprint, the
// engine reports its footprint after every change, and the cache evicts
// then. An engine larger than MaxBytes on its own is dropped as soon as
// nobody uses it through Do.
//
// The gauges sheetlog_engine_cache_engines and sheetlog_engine_cache_bytes
// follow Len and Bytes, summed over the process's caches.
//
// Eviction only drops the cache's reference and closes the engine's
// background work (spreadsheet.Engine.Close). A caller still holding an
// evicted engine finishes its call normally; the next request builds a
// fresh engine from the stores, which are the source of truth. Engines in
// use by Do are not evicted while in use.
package enginecache

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// Defaults of Options.
const (
	DefaultMaxEngines = 256
	DefaultMaxBytes   = 256 << 20
)

// Factory builds the engine of a sheet. It is called once per miss, never
// concurrently for the same sheet. spreadsheet.New reads nothing, so a
// factory is cheap; the engine loads its sheet on first use.
type Factory func(sheet string) (*spreadsheet.Engine, error)

// Options bound a Cache. Zero values take the defaults.
type Options struct {
	// MaxEngines is the most engines kept.
	MaxEngines int
	// MaxBytes bounds the sum of the engines' footprints, as last
	// reported. An engine larger than MaxBytes on its own is dropped
	// once nobody uses it through Do.
	MaxBytes int
	// OnEvict, when set, is called (without the cache's lock held) for
	// every engine the cache drops to stay within its bounds, after the
	// engine is closed.
	OnEvict func(sheet string, e *spreadsheet.Engine)
}

// Stats counts the cache's work.
type Stats struct {
	Hits, Misses, Evictions uint64
	// FactoryErrors counts misses whose factory failed (nothing cached).
	FactoryErrors uint64
}

// Cache is a bounded LRU of engines keyed by sheet id. It is safe for
// concurrent use.
type Cache struct {
	factory Factory
	opts    Options

	mu      sync.Mutex
	entries map[string]*entry
	lru     *list.List // of *entry, most recently used first; ready entries only
	bytes   int
	// oversized is the part of bytes held by engines that alone exceed
	// MaxBytes.
	oversized int
	stats     Stats
}

type entry struct {
	sheet string
	// ready is closed once engine or err is set.
	ready  chan struct{}
	engine *spreadsheet.Engine
	err    error
	elem   *list.Element // nil until ready, and after eviction
	size   int
	pins   int
}

// New returns an empty cache that builds engines with factory.
func New(factory Factory, opts Options) *Cache {
	if factory == nil {
		panic("enginecache: nil factory")
	}
	if opts.MaxEngines <= 0 {
		opts.MaxEngines = DefaultMaxEngines
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	return &Cache{factory: factory, opts: opts, entries: map[string]*entry{}, lru: list.New()}
}

// Get returns the engine of sheet, building it on a miss. Concurrent
// misses for one sheet share one factory call; a factory error is
// returned to all of them and nothing is cached. Get returns early with
// ctx's error if ctx ends while it waits for another caller's factory.
func (c *Cache) Get(ctx context.Context, sheet string) (*spreadsheet.Engine, error) {
	e, err := c.acquire(ctx, sheet, false)
	if err != nil {
		return nil, err
	}
	return e.engine, nil
}

// Do runs fn with the engine of sheet, then measures the engine's
// footprint and evicts engines as needed to stay within the bounds. The
// engine is not evicted while fn runs. Do returns fn's error.
func (c *Cache) Do(ctx context.Context, sheet string, fn func(*spreadsheet.Engine) error) error {
	e, err := c.acquire(ctx, sheet, true)
	if err != nil {
		return err
	}
	defer c.release(e)
	return fn(e.engine)
}

func (c *Cache) acquire(ctx context.Context, sheet string, pin bool) (*entry, error) {
	c.mu.Lock()
	e, ok := c.entries[sheet]
	if ok {
		select {
		case <-e.ready:
			// Only successful entries stay in the map once ready.
			c.stats.Hits++
			c.lru.MoveToFront(e.elem)
			if pin {
				e.pins++
			}
			c.mu.Unlock()
			return e, nil
		default:
		}
		if pin {
			// Pin before waiting so that the engine cannot be evicted
			// between its creation and our use.
			e.pins++
		}
		c.stats.Hits++
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			if pin {
				c.unpin(e)
			}
			return nil, fmt.Errorf("waiting for the engine of sheet %q: %w", sheet, ctx.Err())
		}
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}

	e = &entry{sheet: sheet, ready: make(chan struct{})}
	if pin {
		e.pins++
	}
	c.entries[sheet] = e
	c.stats.Misses++
	c.mu.Unlock()

	c.create(e)
	if e.err != nil {
		return nil, e.err
	}
	return e, nil
}

// create runs the factory for e and publishes the result. A panicking
// factory still releases the waiters (with an error) before the panic
// continues, so no caller blocks forever.
func (c *Cache) create(e *entry) {
	finished := false
	defer func() {
		if !finished {
			e.err = fmt.Errorf("enginecache: the factory for sheet %q panicked", e.sheet)
		}
		var evicted []*entry
		c.mu.Lock()
		if e.err == nil && e.engine == nil {
			e.err = fmt.Errorf("enginecache: the factory for sheet %q returned no engine", e.sheet)
		}
		if e.err != nil {
			c.stats.FactoryErrors++
			delete(c.entries, e.sheet)
		} else {
			e.elem = c.lru.PushFront(e)
			cachedEngines.Add(1)
			e.engine.OnFootprint(func(size int) { c.resized(e, size) })
			c.resizeLocked(e, e.engine.Footprint())
			evicted = c.evictLocked()
		}
		close(e.ready)
		c.mu.Unlock()
		c.notify(evicted)
	}()
	e.engine, e.err = c.factory(e.sheet)
	finished = true
}

func (c *Cache) unpin(e *entry) {
	c.mu.Lock()
	e.pins--
	evicted := c.evictLocked()
	c.mu.Unlock()
	c.notify(evicted)
}

// release unpins e after a use and evicts as needed.
func (c *Cache) release(e *entry) {
	c.mu.Lock()
	e.pins--
	evicted := c.dropOversizedLocked(e)
	evicted = append(evicted, c.evictLocked()...)
	c.mu.Unlock()
	c.notify(evicted)
}

// resized records the footprint an engine reported after a change and
// evicts as needed. Evicted engines report too (their callers may still
// be using them); they no longer count.
func (c *Cache) resized(e *entry, size int) {
	c.mu.Lock()
	c.resizeLocked(e, size)
	evicted := c.dropOversizedLocked(e)
	evicted = append(evicted, c.evictLocked()...)
	c.mu.Unlock()
	c.notify(evicted)
}

// dropOversizedLocked drops e alone if it cannot fit however many others
// go, once nobody uses it through Do.
func (c *Cache) dropOversizedLocked(e *entry) []*entry {
	if e.elem == nil || e.size <= c.opts.MaxBytes || e.pins > 0 {
		return nil
	}
	c.removeLocked(e)
	c.stats.Evictions++
	return []*entry{e}
}

func (c *Cache) resizeLocked(e *entry, size int) {
	if e.elem != nil {
		cachedBytes.Add(int64(size - e.size))
		c.bytes += size - e.size
		c.oversized += c.over(size) - c.over(e.size)
		e.size = size
	}
}

// over is the part of size that counts as oversized: all of it when one
// engine alone exceeds MaxBytes.
func (c *Cache) over(size int) int {
	if size > c.opts.MaxBytes {
		return size
	}
	return 0
}

// evictLocked drops least recently used, unpinned engines until the cache
// is within its bounds (or only pinned engines remain). Engines too big
// to fit on their own go when they are released, so they do not push the
// others out meanwhile.
func (c *Cache) evictLocked() []*entry {
	var evicted []*entry
	el := c.lru.Back()
	for el != nil && (c.lru.Len() > c.opts.MaxEngines || c.bytes-c.oversized > c.opts.MaxBytes) {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.pins == 0 {
			c.removeLocked(e)
			c.stats.Evictions++
			evicted = append(evicted, e)
		}
		el = prev
	}
	return evicted
}

func (c *Cache) removeLocked(e *entry) {
	c.lru.Remove(e.elem)
	e.elem = nil
	cachedEngines.Add(-1)
	cachedBytes.Add(-int64(e.size))
	c.bytes -= e.size
	c.oversized -= c.over(e.size)
	e.size = 0
	if c.entries[e.sheet] == e {
		delete(c.entries, e.sheet)
	}
}

func (c *Cache) notify(evicted []*entry) {
	for _, e := range evicted {
		e.engine.Close()
		if c.opts.OnEvict != nil {
			c.opts.OnEvict(e.sheet, e.engine)
		}
	}
}

// Remove drops the engine of sheet, if cached, and closes it; callers
// that hold it keep using it. A creation in progress is not affected.
func (c *Cache) Remove(sheet string) {
	c.mu.Lock()
	e, ok := c.entries[sheet]
	if !ok || e.elem == nil {
		c.mu.Unlock()
		return
	}
	c.removeLocked(e)
	c.mu.Unlock()
	e.engine.Close()
}

// Len is the number of engines cached.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes is the sum of the cached engines' footprints as last reported.
func (c *Cache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Sheets lists the cached sheets, most recently used first.
func (c *Cache) Sheets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, c.lru.Len())
	for el := c.lru.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*entry).sheet)
	}
	return out
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}
