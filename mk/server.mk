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

# The load runs once with metrics off and once on (absolute figures);
# then BENCH_SERVER_RUNS times two servers side by side, metrics off and
# on (never scraped, then scraped every second), get the same requests at
# the same moments, and benchstat summarises how much worse the one with
# metrics did (raw figures in build/bench-server.txt). The last benchmark holds 20,000
# half-open connections against the server from four helper processes
# (loopback only, about 15 s, stops by itself) and measures the same
# clients with and without them.
BENCH_SERVER_RUNS ?= 6
.PHONY: bench-server
bench-server: ## load the real server over loopback: appends/s and p50/p99 for 16 clients on 16 sheets, GET log of 1,000 entries; what metrics add (two servers side by side, benchstat); the same load under 20,000 half-open connections
	@$(MAKE) --no-print-directory benchstat
	@mkdir -p build
	$(call loadavg,before)
	$(GO) test -run '^$$' -bench '^BenchmarkServerLoad$$' -benchtime 1x -count 1 ./cmd/server
	$(GO) test -run '^$$' -bench '^BenchmarkServerMetricsOverhead$$' -benchtime 1x -count $(BENCH_SERVER_RUNS) ./cmd/server | tee build/bench-server.txt
	$(call loadavg,after)
	$(BENCHSTAT) build/bench-server.txt
	$(GO) test -run '^$$' -bench BenchmarkServerHalfOpen -benchtime 1x -count 1 ./cmd/server
