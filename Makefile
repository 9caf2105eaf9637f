# genesys-dlq-triage — the commands a developer and an operator need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv-tools
PY          := $(VENV)/bin/python
OUT         ?= out
BATCH       ?= events/sqs-mixed-batch.json

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.stamp: tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

.PHONY: tools
tools: $(VENV)/.stamp ## Create the dev-tools venv (moto, cargo-lambda, cfn-lint, SAM CLI)

.PHONY: test
test: tools ## Format check, clippy, and every test
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo test --all-targets

.PHONY: demo
demo: tools ## The Lambda end to end on loopback: moto, Genesys simulator, cargo-lambda emulator
	BATCH=$(BATCH) VENV=$(VENV) tools/demo.sh

.PHONY: demo-cli
demo-cli: ## The CLI: analyse the bundled batch into ./out (no correlation)
	cargo run --quiet --bin dlq-triage -- analyze --out $(OUT) $(BATCH)
	@echo "Open $(OUT)/report.md (Markdown) or $(OUT)/report.json."

.PHONY: bench
bench: ## Criterion benchmark of the pure pipeline over 10,000 records
	cargo bench --bench pipeline

.PHONY: lint
lint: ## fmt + clippy
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

.PHONY: events
events: ## Regenerate events/*.json
	python3 tools/gen_events.py
