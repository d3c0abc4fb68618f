package cputime

import (
	"runtime"
	"testing"
	"time"
)

// Busy work shows as CPU time, however loaded the machine is (it only
// takes longer to get).
func TestProcessGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no CPU time on this platform")
	}
	start := Process()
	x := 0
	for deadline := time.Now().Add(10 * time.Second); Process()-start < 5*time.Millisecond; x++ {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of busy work used %v of CPU (x=%d)", Process()-start, x)
		}
	}
}
