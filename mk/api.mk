# HTTP API (pkg/api), its engine cache (pkg/enginecache) and the OpenAPI
# document (api/). test-go already runs their tests; these targets are for
# iterating on the API alone, fuzzing it and measuring the handler.

.PHONY: test-api
test-api: ## API handler, engine cache and OpenAPI document tests under -race
	$(GO) test -race -count=1 ./pkg/api/... ./pkg/enginecache/... ./api/...

API_FUZZTIME ?= 60s
.PHONY: fuzz-api
fuzz-api: ## fuzz the whole API handler (API_FUZZTIME=60s); fails on any 5xx or panic
	$(GO) test -run '^$$' -fuzz '^FuzzHandler$$' -fuzztime $(API_FUZZTIME) -parallel 1 ./pkg/api/

.PHONY: bench-api
bench-api: ## the handler's own cost over memory stores (GET log of 1000 entries, append, cells)
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/api/
