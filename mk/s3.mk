# S3 blob store (pkg/blobstore/s3). Its tests run in test-go; moto comes
# from mk/aws.mk.

.PHONY: bench-s3
bench-s3: ## S3 requests per blob store operation, and per appended entry at 10/100/1,000 tiles (request counter on gofakes3)
	$(GO) test -count=1 -run '^TestCostS3(PerEntry)?$$' -v ./pkg/blobstore/s3/ | grep -v '^=== \|^--- \|^PASS\|^ok'
