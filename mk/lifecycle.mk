# Snapshot lifecycle: retention, log truncation, storage and scale.

.PHONY: test-storage
test-storage: ## storage bound: 100,000 edits to a 40,000-cell sheet keep at most 3 snapshots' bytes of blobs (no -race: too slow with it)
	$(GO) test -count=1 -run '^TestStorageIsBoundedBySheetSize$$' -v ./pkg/spreadsheet/ | grep -v '^=== '

TEST_TARGETS += test-storage
