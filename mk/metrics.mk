# Metrics: pkg/metrics (the library the core counts with), its exporters
# (pkg/metrics/prom for cmd/server, pkg/metrics/emf for the Lambdas) and
# every package's metric tests; docs/operations.md. bench-api and
# bench-server (mk/api.mk, mk/server.mk) compare metrics off and on with
# benchstat, installed here.

BENCHSTAT_VERSION := v0.0.0-20260908200009-22c9c6c9d4da
BENCHSTAT         := $(BIN)/benchstat
BENCHSTAT_STAMP   := $(BIN)/.benchstat-$(BENCHSTAT_VERSION)

$(BENCHSTAT_STAMP):
	GOBIN=$(BIN) $(GO) install golang.org/x/perf/cmd/benchstat@$(BENCHSTAT_VERSION)
	touch $@

.PHONY: benchstat
benchstat: $(BENCHSTAT_STAMP) ## install benchstat (golang.org/x/perf, pinned) into bin/

# loadavg prints the machine's load average: benchmark figures taken
# under load are noisy, and the reports say how loaded it was.
define loadavg
@echo "load average ($(1)): $$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
endef

.PHONY: test-metrics
test-metrics: ## the metrics library and exporters, and every package's metric tests, under -race
	$(GO) test -race -count=1 ./pkg/metrics/... ./internal/cputime/
	$(GO) test -race -count=1 -run 'Metric' ./pkg/api/ ./pkg/spreadsheet/ ./pkg/workers/... ./pkg/enginecache/ ./cmd/server/ ./internal/lambdarun/
