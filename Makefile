# Every target installs what it needs into the project (bin/, .venv/,
# node_modules/), so a fresh clone needs only Go, Python 3 and Node.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: bench
bench: ## engine benchmarks (BenchmarkAnchorWrite/Read) with allocations
	$(GO) test -run '^$$' -bench 'BenchmarkAnchor' -benchmem -count=1 ./pkg/spreadsheet/

.PHONY: lint
lint: $(STATICCHECK) ## gofmt check, go vet, staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt would change:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Each part of the project adds its own targets in mk/<part>.mk and lists in
# TEST_TARGETS the ones `make test` must run.
# TEST_GO_DEPS lists what the Go tests need installed first (emulators).
TEST_TARGETS :=
TEST_GO_DEPS :=
-include mk/*.mk

.PHONY: test-go
# test/e2e needs a running deployment; `make e2e` starts one and runs it, so
# it is left out here rather than skipped.
test-go: $(TEST_GO_DEPS) ## unit, conformance and property tests of the Go module, with the race detector
	CI=$${CI:-} $(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/test/e2e$$')

.PHONY: test
test: test-go $(TEST_TARGETS) ## the whole suite (Go tests, then every part's own suite)
