# AWS emulator (moto server: DynamoDB, DynamoDB Streams, S3) and the AWS cost
# benchmarks. moto is installed, pinned, into a project-local virtualenv on
# first use; the Go tests find it at $(MOTO_SERVER) (internal/moto).

PYTHON3      ?= python3
VENV         := $(CURDIR)/.venv
MOTO_VERSION := 5.2.5
MOTO_SERVER  := $(VENV)/bin/moto_server
# The stamp names the pinned version, so changing MOTO_VERSION reinstalls.
MOTO_STAMP   := $(VENV)/.moto-$(MOTO_VERSION)

TEST_GO_DEPS += $(MOTO_STAMP)

$(MOTO_STAMP):
	@command -v $(PYTHON3) >/dev/null || { echo "python3 is needed to install the AWS emulator (moto)"; exit 1; }
	test -x $(VENV)/bin/pip || $(PYTHON3) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet 'moto[server]==$(MOTO_VERSION)'
	test -x $(MOTO_SERVER)
	touch $@

.PHONY: moto
moto: $(MOTO_STAMP) ## install the AWS emulator (moto server) into .venv

# Every TestCost* test of the AWS adapters prints its table with -v (the
# DynamoDB one is pkg/eventlog/dynamo/cost_test.go); the request budgets
# they assert also run in `make test`.
.PHONY: bench-aws
bench-aws: $(MOTO_STAMP) ## requests and capacity units per AWS operation (DynamoDB, S3), on the emulator
	CI=$${CI:-} $(GO) test -count=1 -run '^TestCost' -v ./pkg/... | awk '!/^(=== |--- PASS|PASS$$|ok |\?|testing: warning)/'
