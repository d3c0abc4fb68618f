# HTTP API (pkg/api), its engine cache (pkg/enginecache) and the OpenAPI
# document (api/). test-go already runs their tests; these targets are for
# iterating on the API alone, fuzzing it and measuring the handler.

.PHONY: test-api
test-api: ## API handler, engine cache and OpenAPI document tests under -race
	$(GO) test -race -count=1 ./pkg/api/... ./pkg/enginecache/... ./api/...

# Minimizing a new input derived from a batch seed (99 entries, 6 KB)
# takes a minute of executions at Go's default: bounded, so fuzzing
# goes on.
API_FUZZTIME ?= 60s
.PHONY: fuzz-api
fuzz-api: ## fuzz the whole API handler (API_FUZZTIME=60s); fails on any 5xx, panic, or a refused request that wrote
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(API_FUZZTIME) -fuzzminimizetime 5s -parallel 1 ./pkg/api/

# The handler's benchmarks run with metrics off and on; BENCH_API_RUNS
# runs alternate so that the machine's load drifts over both alike, and
# benchstat compares the two (raw figures in build/bench-api.txt). Under
# load those figures swing by tens of per cent, so the overhead itself
# comes from BenchmarkMetricsOverhead, which alternates off and on
# request by request (build/bench-api-overhead.txt).
BENCH_API_RUNS ?= 6
.PHONY: bench-api
bench-api: ## the handler's own cost over memory stores (GET log of 1000 entries, append, cells; what metrics add, off and on compared by benchstat) and of JWT authentication + authorization (cached and first-sight per algorithm)
	@$(MAKE) --no-print-directory benchstat
	@mkdir -p build && : > build/bench-api.txt
	$(call loadavg,before)
	for i in $$(seq $(BENCH_API_RUNS)); do $(GO) test -run '^$$' -bench '^Benchmark(GetLog1000|Append|Cells100)$$' -benchmem -count 1 ./pkg/api/ | tee -a build/bench-api.txt; done
	$(GO) test -run '^$$' -bench '^BenchmarkMetricsOverhead$$' -count $(BENCH_API_RUNS) ./pkg/api/ | tee build/bench-api-overhead.txt
	$(call loadavg,after)
	$(BENCHSTAT) -col /metrics build/bench-api.txt
	$(BENCHSTAT) build/bench-api-overhead.txt
	$(GO) test -run '^$$' -bench '^Benchmark(JWTAuth|RequestJWT|RequestNoAuth)$$' -benchmem -count 1 ./pkg/api/

# schemathesis (from the Python package index, pinned with everything it
# pulls in) in its own virtualenv, run against a real cmd/server: every
# schema-valid request it makes must be accepted, every invalid one
# refused, every reply as the document says. What JSON Schema cannot say
# is in test/schemathesis/ (hooks.py, schemathesis.toml; docs/api.md).
SCHEMATHESIS_VERSION  := 4.32.5
SCHEMATHESIS_VENV     := $(CURDIR)/.venv/schemathesis
SCHEMATHESIS          := $(SCHEMATHESIS_VENV)/bin/schemathesis
SCHEMATHESIS_STAMP    := $(SCHEMATHESIS_VENV)/.schemathesis-$(SCHEMATHESIS_VERSION)
SCHEMATHESIS_SEED     ?= 1
SCHEMATHESIS_EXAMPLES ?= 100

$(SCHEMATHESIS_STAMP): test/schemathesis/requirements.txt
	@command -v $(PYTHON3) >/dev/null || { echo "python3 is needed to install schemathesis"; exit 1; }
	test -x $(SCHEMATHESIS_VENV)/bin/pip || $(PYTHON3) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --disable-pip-version-check --quiet -r test/schemathesis/requirements.txt
	$(SCHEMATHESIS) --version | grep -qF '$(SCHEMATHESIS_VERSION)'
	touch $@

.PHONY: schemathesis
schemathesis: $(SCHEMATHESIS_STAMP) ## install schemathesis into .venv/schemathesis

.PHONY: test-schemathesis
test-schemathesis: $(SCHEMATHESIS_STAMP) build-server ## schemathesis run --checks all against a fresh server (SCHEMATHESIS_SEED=1, SCHEMATHESIS_EXAMPLES=100)
	test/schemathesis/run.sh $(SERVER_BIN) $(SCHEMATHESIS) $(SCHEMATHESIS_SEED) $(SCHEMATHESIS_EXAMPLES)

TEST_TARGETS += test-schemathesis
