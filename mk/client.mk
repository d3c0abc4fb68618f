# The thin clients: the Go client package (pkg/client) and the CLI
# (cmd/sheetctl). Their tests run in test-go, against the real handler
# over loopback; test/e2e drives `make e2e`'s deployment through pkg/client.

SHEETCTL_BIN := $(BIN)/sheetctl
BENCH_IMPORT_COUNT ?= 3

.PHONY: build-sheetctl
build-sheetctl: ## build the command-line client into bin/sheetctl
	$(GO) build -o $(SHEETCTL_BIN) ./cmd/sheetctl

# A fresh cmd/server per run, with its defaults (fsync on, a snapshot
# every 100 entries); SHEETLOG_BENCH_SERVER_ARGS adds server flags.
.PHONY: bench-import
bench-import: ## sheetctl import of a 100,000-cell CSV into a local cmd/server: wall time, cells/s, HTTP requests
	$(GO) test -run '^$$' -bench BenchmarkImport -benchtime $(BENCH_IMPORT_COUNT)x -count 1 ./cmd/sheetctl/
