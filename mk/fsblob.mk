# Filesystem blob store (pkg/blobstore/fs). test-go already runs its tests
# (conformance, crash, prune races, fuzz seeds); these targets are for
# working on it alone.

FSBLOB_FUZZTIME ?= 3m

.PHONY: test-fsblob
test-fsblob: ## filesystem blob store tests under -race (a few seconds)
	$(GO) test -race -count=1 ./pkg/blobstore/fs/

.PHONY: fuzz-fsblob
fuzz-fsblob: ## fuzz the filesystem blob store for escapes out of its root (FSBLOB_FUZZTIME=3m, one core)
	$(GO) test -run '^$$' -fuzz '^FuzzNoEscape$$' -fuzztime $(FSBLOB_FUZZTIME) -parallel 1 ./pkg/blobstore/fs/
