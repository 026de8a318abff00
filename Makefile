# Lode — run `make help` for the targets.
SHELL := /bin/bash
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
GO ?= go
PKGS := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 30s

.DEFAULT_GOAL := help

#? help: list the targets
help:
	@sed -n 's/^#? //p' $(MAKEFILE_LIST) | column -t -s ':'

#? deps: install redis-server (Debian), btcd v0.24.2 and Bitcoin Core v30.0 (into ./bin) when missing
deps:
	@./scripts/install-deps.sh

#? build: build lode, lodectl and lode-bench into ./bin
build:
	$(GO) build -o $(BIN)/ ./cmd/...

#? test: install missing test dependencies (also chromium), then run every test, both tiers, with -race
test:
	@./scripts/install-deps.sh --browser
	$(GO) test -race -tags e2e -timeout 25m $(PKGS)
	LODE_TEST_READ_LOOP=goroutine $(GO) test -race -tags e2e -timeout 10m ./stratum/

#? test-fast: the first tier only (no end-to-end, process-kill, browser or make-run tests); installs nothing
test-fast:
	$(GO) test -race -timeout 10m $(PKGS)

#? bench: run the benchmarks (share validation, end-to-end load)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

#? fuzz: run each fuzz target for $(FUZZTIME)
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

#? lint: gofmt, go vet and staticcheck must be clean
lint:
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e $(PKGS)
	$(GO) run $(STATICCHECK) -tags e2e $(PKGS)

#? run: start Redis, a regtest btcd, lode and simulated miners on local defaults
run: deps build
	./scripts/run-local.sh

.PHONY: help deps build test test-fast bench fuzz lint run
