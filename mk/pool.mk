# The supervised local worker pool (pkg/workers/pool). `make test` already
# runs these through test-go; this target runs them alone.
.PHONY: test-pool
test-pool: ## worker pool tests with the race detector
	$(GO) test -race -count=1 ./pkg/workers/pool/
