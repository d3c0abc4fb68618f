# The change feed (GET log?wait=N; pkg/feed): test-go runs its tests;
# these benchmarks load the real server over loopback.

.PHONY: bench-feed
bench-feed: ## the change feed on the real server: 1,000 waiters woken by one append (p50/p99 from the commit; goal p99 <= 50 ms), 10,000 idle waiters' memory and CPU
	$(GO) test -run '^$$' -bench BenchmarkFeedWake -benchtime 20x -count 1 ./cmd/server
	$(GO) test -run '^$$' -bench BenchmarkFeedIdle -benchtime 1x -count 1 ./cmd/server
