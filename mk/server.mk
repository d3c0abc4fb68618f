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

# The second run holds 20,000 half-open connections against the server
# from four helper processes (loopback only, about 15 s, stops by itself)
# and measures the same clients with and without them.
.PHONY: bench-server
bench-server: ## load the real server over loopback: appends/s and p50/p99 for 16 clients, GET log of 1,000 entries; the same under 20,000 half-open connections
	$(GO) test -run '^$$' -bench BenchmarkServerLoad -benchtime 3x -count 1 ./cmd/server
	$(GO) test -run '^$$' -bench BenchmarkServerHalfOpen -benchtime 1x -count 1 ./cmd/server
