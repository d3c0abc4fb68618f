# Blob store: the in-memory reference and the conformance suite that every
# implementation runs (test-go already runs these; this target is for quick
# iteration on the blob store alone).

.PHONY: test-blob
test-blob: ## blob store reference + conformance suite (page sizes 1, 2, 1000) under -race
	$(GO) test -race -count=1 ./pkg/blobstore/...
