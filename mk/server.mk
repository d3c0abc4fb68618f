# The single-machine server.

SERVER_BIN := $(BIN)/sheetlog-server
RUN_ARGS   ?=

.PHONY: build-server
build-server: ## build the single-machine server into bin/sheetlog-server
	$(GO) build -o $(SERVER_BIN) ./cmd/server

.PHONY: run
run: build-server ## start the single-machine server on ./data (RUN_ARGS="-addr :9090 ..." to override; prints its URL)
	@echo "sheetlog: starting the server (data in ./data); Ctrl-C stops it"
	$(SERVER_BIN) $(RUN_ARGS)

# The load runs BENCH_SERVER_RUNS times, each with metrics off and then
# on (-metrics-addr, scraped every second); benchstat compares the two
# (raw figures in build/bench-server.txt). The second benchmark holds
# 20,000 half-open connections against the server from four helper
# processes (loopback only, about 15 s, stops by itself) and measures the
# same clients with and without them.
BENCH_SERVER_RUNS ?= 6
.PHONY: bench-server
bench-server: ## load the real server over loopback: appends/s and p50/p99 for 16 clients, GET log of 1,000 entries, metrics off and on compared by benchstat; the same under 20,000 half-open connections
	@$(MAKE) --no-print-directory benchstat
	@mkdir -p build && : > build/bench-server.txt
	$(call loadavg,before)
	for i in $$(seq $(BENCH_SERVER_RUNS)); do $(GO) test -run '^$$' -bench BenchmarkServerLoad -benchtime 1x -count 1 ./cmd/server | tee -a build/bench-server.txt; done
	$(call loadavg,after)
	$(BENCHSTAT) -col /metrics build/bench-server.txt
	$(GO) test -run '^$$' -bench BenchmarkServerHalfOpen -benchtime 1x -count 1 ./cmd/server
