# The CDK stack (infra/cdk, its own Go module) and the LocalStack kit
# (localstack/). The CDK CLI and cdklocal are npm packages pinned in
# infra/cdk/package.json and installed into infra/cdk/node_modules.
#
# Knobs: CDK_ARGS (extra `cdk` arguments, e.g. CDK_ARGS='-c jwtIssuer=https://...
# -c jwtAudience=app'), CDK_TEST_FLAGS (go test flags of test-infra).

CDK_DIR       := $(CURDIR)/infra/cdk
CDK_NODE_BIN  := $(CDK_DIR)/node_modules/.bin
CDK           := $(CDK_NODE_BIN)/cdk
CDKLOCAL      := $(CDK_NODE_BIN)/cdklocal
CDK_NPM_STAMP := $(CDK_DIR)/node_modules/.sheetlog-npm-ci
CDK_OUTPUTS   := $(CURDIR)/.cache/cdk-outputs.json
CDK_ARGS      ?=
# One package compiled at a time: the CDK packages are large and this
# machine is shared; the time is dominated by two packages anyway.
CDK_TEST_FLAGS ?= -p 1

# jsii unpacks the CDK's JavaScript once into a project-local cache, and
# Node 20's end-of-life banner would otherwise precede every synth.
CDK_ENV := JSII_RUNTIME_PACKAGE_CACHE_ROOT=$(CURDIR)/.cache/jsii \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 \
	CDK_DISABLE_CLI_TELEMETRY=true

TEST_TARGETS += test-infra

# Template scanners, each pinned in a virtualenv of its own (their
# dependencies must not meet moto's in .venv/). test-infra runs both on the
# synthesized template beside cdk-nag (sheetlogstack/scanners_test.go).
CHECKOV_VERSION  := 3.3.30
CFN_LINT_VERSION := 1.58.0
CHECKOV_VENV     := $(CURDIR)/.venv/checkov
CFN_LINT_VENV    := $(CURDIR)/.venv/cfn-lint
CHECKOV_STAMP    := $(CHECKOV_VENV)/.checkov-$(CHECKOV_VERSION)
CFN_LINT_STAMP   := $(CFN_LINT_VENV)/.cfn-lint-$(CFN_LINT_VERSION)

# pip_tool(venv, requirement, executable): a fresh virtualenv holding one
# pinned tool; the stamp is touched by the caller.
define pip_tool
@command -v $(PYTHON3) >/dev/null || { echo "python3 is needed to install $(2)" >&2; exit 1; }
rm -rf $(1) && $(PYTHON3) -m venv $(1)
$(1)/bin/pip install --disable-pip-version-check --quiet '$(2)'
test -x $(1)/bin/$(3)
endef

$(CHECKOV_STAMP):
	$(call pip_tool,$(CHECKOV_VENV),checkov==$(CHECKOV_VERSION),checkov)
	touch $@

$(CFN_LINT_STAMP):
	$(call pip_tool,$(CFN_LINT_VENV),cfn-lint==$(CFN_LINT_VERSION),cfn-lint)
	touch $@

.PHONY: scanners
scanners: $(CHECKOV_STAMP) $(CFN_LINT_STAMP) ## install checkov and cfn-lint (pinned, each in .venv/<tool>/)

$(CDK_NPM_STAMP): $(CDK_DIR)/package.json $(CDK_DIR)/package-lock.json
	cd $(CDK_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: cdk-deps
cdk-deps: $(CDK_NPM_STAMP) ## install the pinned CDK CLI and cdklocal (npm ci into infra/cdk/node_modules)

.PHONY: test-infra
test-infra: cdk-deps scanners ## CDK stack assertions, cdk-nag, checkov, cfn-lint, LocalStack kit checks (offline; no zips, no Docker)
	cd $(CDK_DIR) && CI=$${CI:-} $(CDK_ENV) SHEETLOG_CHECKOV=$(CHECKOV_VENV)/bin/checkov \
		SHEETLOG_CFN_LINT=$(CFN_LINT_VENV)/bin/cfn-lint $(GO) test $(CDK_TEST_FLAGS) -count=1 ./...

.PHONY: lint-infra
lint-infra: $(STATICCHECK) ## gofmt, go vet and staticcheck of infra/cdk (slow: type-checks the CDK)
	cd $(CDK_DIR) && $(GO) vet ./... && $(STATICCHECK) ./...

# The Lambda zips come from `make lambdas` (another fragment). Build them
# when that target exists; either way refuse to go on without them.
.PHONY: cdk-lambda-zips
cdk-lambda-zips:
	@if $(MAKE) -n lambdas >/dev/null 2>&1; then $(MAKE) --no-print-directory lambdas; fi
	@compgen -G '$(CURDIR)/build/*.zip' >/dev/null || { \
		echo "No Lambda zips in build/: run \`make lambdas\` first (the stack deploys build/<function>.zip)." >&2; exit 1; }

.PHONY: synth
synth: cdk-deps cdk-lambda-zips ## synthesize the stack offline into infra/cdk/cdk.out (needs build/*.zip)
	cd $(CDK_DIR) && $(CDK_ENV) $(CDK) synth --quiet --no-notices $(CDK_ARGS)
	@echo "cloud assembly in $(CDK_DIR)/cdk.out"

.PHONY: cdk-bootstrap
cdk-bootstrap: cdk-deps cdk-lambda-zips ## once per account and region: `cdk bootstrap` (asset bucket and deploy roles)
	cd $(CDK_DIR) && $(CDK_ENV) $(CDK) bootstrap --no-notices $(CDK_ARGS)

.PHONY: deploy
deploy: cdk-deps cdk-lambda-zips ## `cdk deploy` with your AWS credentials; outputs in .cache/cdk-outputs.json
	mkdir -p $(dir $(CDK_OUTPUTS))
	cd $(CDK_DIR) && $(CDK_ENV) $(CDK) deploy --no-notices --outputs-file $(CDK_OUTPUTS) $(CDK_ARGS)

# LocalStack kit: see localstack/README.md. Needs Docker with Compose v2.
LOCALSTACK_COMPOSE := $(CURDIR)/localstack/docker-compose.yml
LOCALSTACK_OUTPUTS := $(CURDIR)/.cache/localstack-outputs.json
LOCALSTACK_STACK   ?= Sheetlog
# dev: destroyable; localstack: a function URL instead of the HTTP API
# (LocalStack's community edition has no HTTP APIs); allowAnonymous: the
# e2e suite does not sign requests.
LOCALSTACK_CDK_ARGS ?= -c dev=true -c localstack=true -c allowAnonymous=true
LOCALSTACK_CDK_ALL  := -c stackName=$(LOCALSTACK_STACK) $(LOCALSTACK_CDK_ARGS) $(CDK_ARGS)

.PHONY: localstack-up
localstack-up: ## start LocalStack (Docker) and wait until it is healthy
	docker compose -f $(LOCALSTACK_COMPOSE) up --detach --wait

.PHONY: localstack-deploy
localstack-deploy: cdk-deps cdk-lambda-zips ## bootstrap and deploy the stack on LocalStack with cdklocal
	mkdir -p $(dir $(LOCALSTACK_OUTPUTS))
	cd $(CDK_DIR) && $(CDK_ENV) $(CDKLOCAL) bootstrap --no-notices $(LOCALSTACK_CDK_ALL)
	cd $(CDK_DIR) && $(CDK_ENV) $(CDKLOCAL) deploy --no-notices --require-approval never \
		--outputs-file $(LOCALSTACK_OUTPUTS) $(LOCALSTACK_CDK_ALL)

.PHONY: localstack-e2e
localstack-e2e: ## run test/e2e against the API deployed on LocalStack
	@test -s $(LOCALSTACK_OUTPUTS) || { echo "no $(LOCALSTACK_OUTPUTS): run make localstack-deploy first" >&2; exit 1; }
	url=$$(node -p 'require(process.argv[1])[process.argv[2]].ApiUrl.replace(/\/+$$/, "")' \
		$(LOCALSTACK_OUTPUTS) $(LOCALSTACK_STACK)); \
	echo "SHEETLOG_E2E_BASE_URL=$$url"; \
	SHEETLOG_E2E_BASE_URL=$$url $(GO) test ./test/e2e -count=1

.PHONY: localstack-down
localstack-down: ## stop LocalStack and delete its state
	docker compose -f $(LOCALSTACK_COMPOSE) down --volumes
	rm -f $(LOCALSTACK_OUTPUTS)
