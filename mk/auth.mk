# JWTs for the single-machine server in development: a key pair kept in
# .cache/devkeys (made on first use), its public key set, and tokens
# signed with it (cmd/devtoken; docs/api.md).

DEV_KEYS       := .cache/devkeys
DEV_TOKEN_ARGS ?=
DEV_JWT_FLAGS  := -jwt-keys $(DEV_KEYS)/jwks.json -jwt-issuer sheetlog-dev -jwt-audience sheetlog

.PHONY: dev-token
dev-token: ## print a development JWT (DEV_TOKEN_ARGS="-sub alice -scope 'sheets:write:team-7-*'"); the key pair is made in .cache/devkeys on first use
	@$(GO) run ./cmd/devtoken -dir $(DEV_KEYS) $(DEV_TOKEN_ARGS)

.PHONY: run-jwt
run-jwt: build-server ## start the server verifying JWTs signed by the development key pair (make dev-token prints one); RUN_ARGS as for run
	@$(GO) run ./cmd/devtoken -dir $(DEV_KEYS) -keys-only
	@echo "sheetlog: starting the server (data in ./data, JWTs from $(DEV_KEYS)); Ctrl-C stops it"
	$(SERVER_BIN) $(DEV_JWT_FLAGS) $(RUN_ARGS)

# The Lambda end to end in the stack's JWT configuration: the harness's
# front verifies tokens as API Gateway's JWT authorizer does and hands the
# API function the claims as API Gateway flattens them; the scope table
# and the bad tokens run through it, TestHealth with a token allowed
# everything, and TestCORSPreflight (preflights answered before the
# authorizer) (test/e2e's other tests run in `make e2e`; they only need
# that token, but take minutes).
.PHONY: e2e-jwt
e2e-jwt: $(RIE_STAMP) moto e2e-build ## the Lambda zips end to end behind a JWT authorizer: the per-sheet scope table and bad tokens through the front
	$(E2E_DIR)/bin/runner -jwt -rie $(RIE) -zips $(E2E_DIR) -arch $(HOST_GOARCH) -logs $(E2E_DIR)/logs-jwt $(E2E_FLAGS) \
		-- $(GO) test $(E2E_TESTARGS) -run '^(TestSheetScopes|TestHealth|TestCORSPreflight)$$' ./test/e2e

TEST_TARGETS += e2e-jwt
