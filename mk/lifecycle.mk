# Snapshot lifecycle: retention, log truncation, storage and blob cost per
# entry. Both tests run without -race (test-go leaves them out: they take
# minutes with it).

.PHONY: test-lifecycle
test-lifecycle: ## storage bound (100,000 edits to 40,000 cells keep at most 3 snapshots' bytes) and S3 requests per entry (<= 2 at 10/100/1,000 tiles)
	$(GO) test -count=1 -run '^TestStorageIsBoundedBySheetSize$$' -v ./pkg/spreadsheet/ | grep -v '^=== '
	$(GO) test -count=1 -run '^TestCostS3PerEntry$$' -v ./pkg/blobstore/s3/ | grep -v '^=== '

TEST_TARGETS += test-lifecycle

.PHONY: bench-scale
bench-scale: ## BenchmarkScale: a 1,000 x 1,000 sheet on memory stores (write with batch appends and snapshots, load, read, heap per cell, one snapshot)
	$(GO) test -run '^$$' -bench '^BenchmarkScale$$' -benchtime 3x -count 1 ./pkg/spreadsheet/
