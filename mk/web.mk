# The web page (pkg/webui): plain ES modules and CSS embedded in the Go
# binaries, no build step. Its tools are npm packages pinned in
# web/package.json (TypeScript checks the page's JSDoc types; playwright-core
# drives Debian's Chromium in the browser tests), installed into
# web/node_modules with `npm ci`. No tool downloads a browser: Chromium
# comes from apt.

WEB_DIR       := $(CURDIR)/web
WEB_NODE_BIN  := $(WEB_DIR)/node_modules/.bin
WEB_NPM_STAMP := $(WEB_DIR)/node_modules/.sheetlog-npm-ci
WEB_OUT       := $(CURDIR)/build/web
# Debian's Chromium. Another browser binary can be named here; it must be
# Chromium-based (Playwright talks CDP to it).
CHROMIUM      ?= /usr/bin/chromium
# Extra arguments of `node --test` (e.g. WEB_TEST_ARGS='--test-name-pattern=token').
WEB_TEST_ARGS ?=

TEST_TARGETS += test-web

$(WEB_NPM_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: web-deps
web-deps: $(WEB_NPM_STAMP) ## install the page's pinned tools (TypeScript, playwright-core) into web/node_modules

# Installs Debian's chromium when it is missing and we are root; anything
# else is a loud failure, never a skip.
.PHONY: chromium
chromium: ## install Debian's Chromium for the browser tests (apt-get, as root) when CHROMIUM (/usr/bin/chromium) is missing
	@if [ -x '$(CHROMIUM)' ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "$(CHROMIUM) is missing: the browser tests need Debian's chromium package (as root: apt-get update && apt-get install chromium), or CHROMIUM=/path/to/a/chromium" >&2; exit 1; fi; \
	echo "installing Debian's chromium with apt-get"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	test -x '$(CHROMIUM)' || { echo "apt-get installed chromium but $(CHROMIUM) is still missing" >&2; exit 1; }

.PHONY: lint-web
lint-web: $(WEB_NPM_STAMP) ## type-check the page's JavaScript (tsc --noEmit --checkJs over its JSDoc types)
	$(WEB_NODE_BIN)/tsc --noEmit -p $(WEB_DIR)/tsconfig.json

lint: lint-web

# The browser tests start the real server binary (temporary data
# directories, free ports) and write a screenshot of every step under
# build/web/.
.PHONY: test-web
test-web: lint-web build-server chromium ## the page: unit tests of its modules, then Playwright + Chromium against a real cmd/server (screenshots in build/web/)
	@mkdir -p $(WEB_OUT)
	cd $(WEB_DIR) && CI=$${CI:-} SHEETLOG_SERVER_BIN=$(SERVER_BIN) CHROMIUM=$(CHROMIUM) WEB_OUT=$(WEB_OUT) \
		node --test --test-concurrency=1 $(WEB_TEST_ARGS) test/*.test.mjs

.PHONY: bench-web
bench-web: web-deps build-server chromium ## the page's figures in Chromium: first viewport on 40,000 cells, frame times while scrolling, keypress to value
	@mkdir -p $(WEB_OUT)
	cd $(WEB_DIR) && SHEETLOG_SERVER_BIN=$(SERVER_BIN) CHROMIUM=$(CHROMIUM) WEB_OUT=$(WEB_OUT) node bench/bench.mjs
