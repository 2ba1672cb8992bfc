# Trove: the two commands of the README, and a few more.
#
#   make run     install what is missing, build, and show Trove on the example rules
#   make test    install what is missing, build, and run the whole test suite (what CI runs)
#
SWIFT ?= swift
CONFIG ?= rules/demo.yaml

.PHONY: run test deps build release check-rules conformance lint fuzz shadow-demo clean help

help:
	@echo "make run          install dependencies, build, and run Trove in front of the demo origin ($(CONFIG))"
	@echo "make test         install dependencies and run the whole test suite (CI runs this)"
	@echo "make check-rules  run 'trove check' on every file in rules/"
	@echo "make release      optimised build in .build/release/trove (the Dockerfile runs this too)"
	@echo "make lint         hadolint on the Dockerfile (part of make test)"
	@echo "make conformance  the public HTTP caching test suite against Trove, nginx and Varnish (needs network, node)"
	@echo "make fuzz         libFuzzer on every parser, FUZZ_SECONDS (60) each; new corpus inputs land in fuzz/corpus"
	@echo "make shadow-demo  the rollout of docs/shadow.md in front of the demo origin: pass-through, suggest, shadow, fix"

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	@scripts/run.sh "$(CONFIG)"

test: deps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test

lint:
	@scripts/lint-dockerfile.sh

check-rules: build
	@for f in rules/*.yaml; do .build/debug/trove check --config "$$f" >/dev/null && echo "ok  $$f" || { .build/debug/trove check --config "$$f"; exit 1; }; done

fuzz: deps
	@scripts/fuzz.sh

shadow-demo: release
	@scripts/shadow-demo.sh

conformance: release
	conformance/cache-tests/run.sh

clean:
	rm -rf .build
