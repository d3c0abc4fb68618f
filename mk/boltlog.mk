# Embedded durable event log (pkg/eventlog/boltlog). `make test` already
# runs its tests, including a 20-cycle crash test (go test ./...); these
# targets are for the long run and the figures.

SOAK_CYCLES ?= 500

.PHONY: soak
soak: ## crash test of the bbolt event log: SIGKILL a writer SOAK_CYCLES times (default 500), check after each
	BOLTLOG_CRASH_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 0 -run '^TestCrashRecovery$$' -v ./pkg/eventlog/boltlog/

.PHONY: bench-boltlog
bench-boltlog: ## fsync'd appends/s and p50/p99 latency (1 and 16 clients), batch appends of 1/10/99 entries, a 1000-entry query, on the bbolt event log
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkAppend|BenchmarkQuery1000' -benchtime 5000x ./pkg/eventlog/boltlog/
