// Package heaptest measures the live heap, for tests that check what
// code says it holds against what it really holds.
package heaptest

import "runtime"

// Live is the heap in use after a full collection. Two cycles, so that
// objects freed by finalizers of the first are gone too.
func Live() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
