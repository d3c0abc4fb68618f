# The Lambda functions (cmd/api-lambda, cmd/workflow-lambda,
# cmd/sweeper-lambda): `make lambdas` builds the zips the CDK stack deploys;
# `make e2e` runs the same binaries, built for this machine, end to end
# under the AWS Lambda Runtime Interface Emulator against moto (DynamoDB,
# its stream, S3), with the suite in test/e2e. See docs/lambda.md.

LAMBDA_FUNCTIONS := api-lambda workflow-lambda sweeper-lambda
# Deployed architecture; `make lambdas GOARCH=amd64` for x86_64 functions
# (only a GOARCH given on the command line counts, not one inherited from
# the environment).
LAMBDA_GOARCH := $(if $(filter command line,$(origin GOARCH)),$(GOARCH),arm64)
HOST_GOARCH    = $(shell $(GO) env GOARCH)
# provided.al2023: a static `bootstrap`, no RPC mode, no paths or symbols.
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"

RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE         := $(BIN)/aws-lambda-rie
RIE_STAMP   := $(BIN)/.aws-lambda-rie-$(RIE_VERSION)

E2E_DIR      := $(CURDIR)/build/e2e
# Extra flags of the harness runner (see `go run ./internal/lambdaharness/runner -h`).
E2E_FLAGS    ?=
E2E_TESTARGS ?= -count=1 -v

# zip_bootstrap(binary, zip): a zip holding the binary as an executable
# `bootstrap` (mode 0755, fixed timestamp so the zip is reproducible).
define zip_bootstrap
python3 -c 'import sys, zipfile; \
zi = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0)); \
zi.create_system = 3; zi.external_attr = (0o100755 << 16); zi.compress_type = zipfile.ZIP_DEFLATED; \
z = zipfile.ZipFile(sys.argv[2], "w"); z.writestr(zi, open(sys.argv[1], "rb").read(), compresslevel=9); z.close()' $(1) $(2)
endef

.PHONY: lambdas
lambdas: ## build the Lambda zips build/<function>.zip (linux/arm64; GOARCH=amd64 to override)
	@mkdir -p build/lambda-$(LAMBDA_GOARCH)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) \
		-o build/lambda-$(LAMBDA_GOARCH)/ $(addprefix ./cmd/,$(LAMBDA_FUNCTIONS))
	@for fn in $(LAMBDA_FUNCTIONS); do \
		$(call zip_bootstrap,build/lambda-$(LAMBDA_GOARCH)/$$fn,build/$$fn.zip) || exit 1; \
		printf '  build/%s.zip  %s bytes (linux/%s)\n' $$fn $$(wc -c < build/$$fn.zip) $(LAMBDA_GOARCH); \
	done

$(RIE_STAMP):
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	touch $@

.PHONY: rie
rie: $(RIE_STAMP) ## install the AWS Lambda Runtime Interface Emulator into bin/

# The harness tests (internal/lambdaharness) start the emulator too.
TEST_GO_DEPS += $(RIE_STAMP)
TEST_TARGETS += e2e

.PHONY: e2e-build
e2e-build:
	@mkdir -p $(E2E_DIR)/bin
	CGO_ENABLED=0 GOOS=linux GOARCH=$(HOST_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) \
		-o $(E2E_DIR)/bin/ $(addprefix ./cmd/,$(LAMBDA_FUNCTIONS)) ./internal/lambdaharness/runner
	@for fn in $(LAMBDA_FUNCTIONS); do $(call zip_bootstrap,$(E2E_DIR)/bin/$$fn,$(E2E_DIR)/$$fn.zip) || exit 1; done

.PHONY: e2e
# TestSheetScopes needs the harness's JWT configuration: `make e2e-jwt` runs it.
e2e: $(RIE_STAMP) moto e2e-build ## the Lambda binaries end to end: RIE + moto + local stream mapping + test/e2e
	$(E2E_DIR)/bin/runner -rie $(RIE) -bin $(E2E_DIR)/bin -zips $(E2E_DIR) -logs $(E2E_DIR)/logs $(E2E_FLAGS) \
		-- $(GO) test $(E2E_TESTARGS) -skip '^TestSheetScopes$$' ./test/e2e

.PHONY: e2e-up
e2e-up: $(RIE_STAMP) moto e2e-build ## start the local Lambda harness and keep it up (prints SHEETLOG_E2E_BASE_URL)
	$(E2E_DIR)/bin/runner -rie $(RIE) -bin $(E2E_DIR)/bin -logs $(E2E_DIR)/logs -serve $(E2E_FLAGS)
