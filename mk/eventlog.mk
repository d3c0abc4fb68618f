# Event log: the in-memory reference log and the conformance suite. Their
# tests run in test-go; this adds the benchmarks.

.PHONY: bench-eventlog
bench-eventlog: ## event log benchmarks (in-memory reference: 40k appends, query from snapshot)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./pkg/eventlog/...
