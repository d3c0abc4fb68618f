# The Lambda functions (cmd/api-lambda, cmd/workflow-lambda,
# cmd/sweeper-lambda): `make lambdas` builds the zips the CDK stack deploys;
# `make e2e` runs zips built by the same recipe for this machine, end to end
# under the AWS Lambda Runtime Interface Emulator against moto (DynamoDB,
# its stream, S3, Secrets Manager), with the suite in test/e2e;
# `make e2e-arm64` runs the arm64 zips of `make lambdas` themselves under
# Debian's qemu-user-static. See docs/lambda.md.

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

# lambda_zips(arch, dir): every function built for linux/arch with the
# deployment flags and zipped into dir/<function>.zip. The zips are
# reproducible (-trimpath, fixed timestamps): the same sources give the
# same bytes.
define lambda_zips
@mkdir -p build/lambda-$(1) $(2)
CGO_ENABLED=0 GOOS=linux GOARCH=$(1) $(GO) build $(LAMBDA_GOFLAGS) \
	-o build/lambda-$(1)/ $(addprefix ./cmd/,$(LAMBDA_FUNCTIONS))
@for fn in $(LAMBDA_FUNCTIONS); do \
	$(call zip_bootstrap,build/lambda-$(1)/$$fn,$(2)/$$fn.zip) || exit 1; \
	printf '  %s/%s.zip  %s bytes (linux/%s)\n' $(2) $$fn $$(wc -c < $(2)/$$fn.zip) $(1); \
done
endef

.PHONY: lambdas
lambdas: ## build the Lambda zips build/<function>.zip (linux/arm64; GOARCH=amd64 to override)
	$(call lambda_zips,$(LAMBDA_GOARCH),build)

$(RIE_STAMP):
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)
	touch $@

.PHONY: rie
rie: $(RIE_STAMP) ## install the AWS Lambda Runtime Interface Emulator into bin/

# The harness tests (internal/lambdaharness) start the emulator too.
TEST_GO_DEPS += $(RIE_STAMP)
TEST_TARGETS += e2e

# The suite on the zips `make lambdas GOARCH=<this machine>` would build,
# made by the same recipe into build/e2e/ (build/*.zip stay the deployment
# zips): the fast path.
.PHONY: e2e-build
e2e-build:
	@mkdir -p $(E2E_DIR)/bin
	$(GO) build -o $(E2E_DIR)/bin/ ./internal/lambdaharness/runner
	$(call lambda_zips,$(HOST_GOARCH),$(E2E_DIR))

.PHONY: e2e
# TestSheetScopes needs the harness's JWT configuration: `make e2e-jwt` runs it.
e2e: $(RIE_STAMP) moto e2e-build ## the Lambda zips end to end: RIE + moto + local stream mapping + test/e2e
	$(E2E_DIR)/bin/runner -rie $(RIE) -zips $(E2E_DIR) -arch $(HOST_GOARCH) -logs $(E2E_DIR)/logs $(E2E_FLAGS) \
		-- $(GO) test $(E2E_TESTARGS) -skip '^TestSheetScopes$$' ./test/e2e

.PHONY: e2e-up
e2e-up: $(RIE_STAMP) moto e2e-build ## start the local Lambda harness and keep it up (prints SHEETLOG_E2E_BASE_URL)
	$(E2E_DIR)/bin/runner -rie $(RIE) -zips $(E2E_DIR) -logs $(E2E_DIR)/logs -serve $(E2E_FLAGS)

# The deployment zips themselves, arm64, under Debian's qemu-user-static
# (installed with apt when missing, as root; otherwise the target fails and
# says how). Emulation makes the functions several times slower, so
# `make test` runs a smoke subset that drives all three functions: the
# health check, CORS preflight, one sheet of E2E_ARM64_CELLS cells with its
# snapshots and blobs checked against the model (API + stream + workflow),
# and the dead-letter runbook (dead letter, sweeper, re-drive).
# `make e2e-arm64 E2E_ARM64_TESTARGS='-count=1 -v' E2E_ARM64_CELLS=1000
# E2E_ARM64_SHEETS=3` runs the whole suite, as `make e2e` does.
QEMU_AARCH64       ?= /usr/bin/qemu-aarch64-static
E2E_ARM64_CELLS    ?= 150
E2E_ARM64_SHEETS   ?= 1
E2E_ARM64_TESTARGS ?= -count=1 -v -run '^(TestHealth|TestCORSPreflight|TestSheets|TestDeadLetterRunbook)$$'
E2E_ARM64_DIR      := $(CURDIR)/build/e2e-arm64

.PHONY: qemu
qemu: ## make sure qemu-aarch64-static is there (apt-get install qemu-user-static, as root, when missing)
	@if [ -x $(QEMU_AARCH64) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's qemu-user-static (for $(QEMU_AARCH64))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null; \
	fi; \
	test -x $(QEMU_AARCH64) || { echo "$(QEMU_AARCH64) is missing and could not be installed: run \`apt-get install qemu-user-static\` as root (Debian), or set QEMU_AARCH64" >&2; exit 1; }; \
	$(QEMU_AARCH64) --version | head -n 1

TEST_TARGETS += e2e-arm64

.PHONY: e2e-arm64
e2e-arm64: $(RIE_STAMP) moto qemu ## the arm64 zips of `make lambdas` end to end under qemu (smoke subset; see E2E_ARM64_TESTARGS)
	$(MAKE) --no-print-directory lambdas GOARCH=arm64
	@mkdir -p $(E2E_ARM64_DIR)/bin
	$(GO) build -o $(E2E_ARM64_DIR)/bin/ ./internal/lambdaharness/runner
	SHEETLOG_E2E_CELLS=$(E2E_ARM64_CELLS) SHEETLOG_E2E_SHEETS=$(E2E_ARM64_SHEETS) \
	$(E2E_ARM64_DIR)/bin/runner -rie $(RIE) -zips build -arch arm64 -qemu $(QEMU_AARCH64) -timeout 8m \
		-logs $(E2E_ARM64_DIR)/logs $(E2E_FLAGS) -- $(GO) test $(E2E_ARM64_TESTARGS) ./test/e2e
