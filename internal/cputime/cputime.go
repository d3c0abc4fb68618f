// Package cputime reads the CPU time processes have used, for benchmarks
// whose figures must survive a loaded machine: other programs stretch
// the wall time of a measured run, much less its CPU time.
package cputime

import "time"

// Process is the CPU time (user and system) this process has used so
// far; 0 where the platform cannot say.
func Process() time.Duration { return process() }
