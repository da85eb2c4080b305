# cioloader — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...

.DEFAULT_GOAL := help

help: ## show this help
	@grep -hE '^[a-zA-Z_/-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

build: ## build bin/cioloader
	$(GO) build -o bin/cioloader ./cmd/cioloader

run: build ## run the server with its embedded Postgres under ./.cioloader (no setup needed)
	./bin/cioloader serve

test: ## run every test against a real Postgres (a throwaway local cluster, or TEST_DATABASE_URL)
	$(GO) test -race -count=1 -p 1 -timeout 20m $(PKGS)

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@for t in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' internal | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "^func $$t\(" --include='*_test.go' internal | head -1 | xargs dirname); \
		echo "== $$t ($$pkg)"; $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$${FUZZTIME:-20s} ./$$pkg || exit 1; \
	done

bench: build ## run the load benchmark of SPEC 9 and write BENCHMARKS.md
	./bin/cioloader bench --out BENCHMARKS.md

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest $(PKGS)

.PHONY: help build run test fuzz bench lint
