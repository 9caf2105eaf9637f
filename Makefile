# genesys-dlq-triage — the commands a developer and an operator need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv-tools
PY          := $(VENV)/bin/python
OUT         ?= out
BATCH       ?= events/sqs-mixed-batch.json
CARGO_FUZZ_VERSION ?= 0.13.2

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.stamp: tools/requirements.txt tools/constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt -c tools/constraints.txt
	touch $@

DYNALITE    := tools/dynalite/node_modules/.stamp

# dynalite (DynamoDB for the incident tests), at the version package-lock.json pins.
$(DYNALITE): tools/dynalite/package.json tools/dynalite/package-lock.json
	cd tools/dynalite && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# A real browser for the page tests: Debian's chromium, installed when it is absent (as root,
# or through sudo).
.PHONY: browser
browser: ## Install Debian's chromium (headless) for the page tests, unless present
	@command -v $${CHROMIUM:-chromium} >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium >/dev/null; }
	@$${CHROMIUM:-chromium} --version 2>/dev/null

.PHONY: screenshot
screenshot: browser ## Re-take docs/summary-page.png: the page test's 1280x1600 screenshot of summary.html over a generated hour-long incident (6,080 dead letters, 12 incidents)
	cargo test --test page a_real_incident_reads_at_1280_px
	cp target/page-screenshots/incident-summary.png docs/summary-page.png

.PHONY: tools
tools: $(VENV)/.stamp $(DYNALITE) browser ## Create the dev-tools venv (moto, cargo-lambda, cfn-lint, SAM CLI), install dynalite and chromium

export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true

.PHONY: test
test: lint validate ## Lint (fmt, clippy, cfn-lint) and every test: unit, golden, property, simulator, moto, emulator, template
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo test --all-targets

.PHONY: test-unit
test-unit: ## The fast tests: no venv, no servers (unit, pipeline twins, properties, CLI golden, template)
	cargo test --lib --bins --test pipeline --test properties --test fault_matrix --test hostile --test cli_analyze --test template --test architecture

.PHONY: build
build: tools ## Release build of the Lambda for arm64 (cargo-lambda + zig)
	rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || \
	  { echo "arm64 target unavailable: building x86_64 (set Architectures: [x86_64] in template.yaml)"; \
	    PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --x86-64 --bin dlq-triage-lambda; exit $$?; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --bin dlq-triage-lambda
	@ls -l target/lambda/dlq-triage-lambda/bootstrap

.PHONY: demo
demo: tools ## The Lambda end to end on loopback: moto, Genesys simulator, cargo-lambda emulator
	BATCH=$(BATCH) VENV=$(VENV) tools/demo.sh

.PHONY: demo-poll
demo-poll: tools ## The README's incident walkthrough (poll, then replay) against moto, the Genesys simulator and a local sink
	VENV=$(VENV) tools/demo-poll.sh

.PHONY: demo-incidents
demo-incidents: tools ## Incidents opened, updated and resolved once, on loopback (moto and dynalite; about two minutes)
	VENV=$(VENV) tools/demo-incidents.sh

.PHONY: demo-redrive
demo-redrive: tools ## A resolved incident redrives itself to its API destination, on loopback (moto, dynalite, a sink; about two minutes)
	VENV=$(VENV) tools/demo-redrive.sh

.PHONY: demo-cli
demo-cli: ## The CLI: analyse the bundled batch into ./out (no correlation)
	cargo run --quiet --bin dlq-triage -- analyze --out $(OUT) $(BATCH)
	@echo "Open $(OUT)/report.md (Markdown) or $(OUT)/report.json."

.PHONY: bench
bench: tools ## Criterion benchmark of the pure pipeline over 10,000 records, then bench-memory
	cargo bench --bench pipeline
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --bench memory

.PHONY: bench-memory
bench-memory: tools ## Peak RSS of the Lambda on a 6 MB batch (emulator + moto) and of analyze on 10,000 records, analyze's wall time vs writing the files alone
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --bench memory

.PHONY: bench-poll
bench-poll: ## Drain 100,000 messages from the SQS stand-in (20 ms a call) with poll --delete --concurrency 8 vs the bare SQS calls, then with 5 % of calls throttled (msg/s, peak RSS, retries)
	cargo bench --bench poll_drain

.PHONY: bench-replay
bench-replay: ## replay --rate 1000 --concurrency 64 of 20,000 events to a local sink: the rate held, and the most it could go (peak RSS)
	cargo bench --bench replay_rate

.PHONY: bench-health
bench-health: tools ## summarize --since 30d over 1,000 rules with its health look-ups, CloudWatch stand-in at 20 ms a call (wall time beside --no-health, calls made)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo bench --bench health

.PHONY: bench-summarize
bench-summarize: tools ## summarize over 1,000 reports of 1,000 records (tmpfs) beside DuckDB's read_json and the read/parse floors; the page's cost; the same from S3 at 20 ms a request (wall time, peak RSS)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" BENCH_PYTHON="$(CURDIR)/$(PY)" cargo bench --bench summarize

.PHONY: fuzz
fuzz: ## Bounded fuzzing: proptest (FUZZ_CASES, default 20000 each), then cargo-fuzz on parsing, on the input transformation and on the stored-report parse against serde_json (FUZZ_SECONDS each, default 60; installs nightly and cargo-fuzz)
	PROPTEST_CASES=$${FUZZ_CASES:-20000} cargo test --release --test properties --test fault_matrix
	rustup toolchain install nightly --profile minimal
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)
	mkdir -p fuzz/corpus/parse_batch fuzz/corpus/input_transform fuzz/corpus/report_digest
	cargo +nightly fuzz run parse_batch fuzz/corpus/parse_batch events -- -max_total_time=$${FUZZ_SECONDS:-60} -max_len=1048576
	cargo +nightly fuzz run input_transform fuzz/corpus/input_transform -- -max_total_time=$${FUZZ_SECONDS:-60}
	cargo run --quiet --bin dlq-triage -- analyze --no-correlate --out target/fuzz-seed $(BATCH) >/dev/null
	cp target/fuzz-seed/report.json fuzz/corpus/report_digest/seed-report.json
	cargo +nightly fuzz run report_digest fuzz/corpus/report_digest -- -max_total_time=$${FUZZ_SECONDS:-60} -max_len=262144

.PHONY: lint
lint: tools ## cargo fmt --check, clippy -D warnings (no function over 80 lines: clippy.toml; no unreachable pub: src/lib.rs), cfn-lint on template.yaml
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings -D clippy::too_many_lines
	$(VENV)/bin/cfn-lint template.yaml

.PHONY: validate
validate: tools ## sam validate --lint (offline)
	$(VENV)/bin/sam validate --lint --region us-east-1

.PHONY: deploy
deploy: tools ## sam build + sam deploy (--guided the first time, when samconfig.toml is absent)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build
	if [ -f samconfig.toml ]; then $(VENV)/bin/sam deploy; else $(VENV)/bin/sam deploy --guided; fi

.PHONY: invoke-local
invoke-local: tools ## sam local invoke with events/sqs-single.json (needs Docker or Finch)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build
	$(VENV)/bin/sam local invoke TriageFunction -e events/sqs-single.json

.PHONY: logs
logs: tools ## Tail the deployed function's logs (sam logs)
	$(VENV)/bin/sam logs --name TriageFunction --tail

.PHONY: events
events: ## Regenerate events/*.json
	python3 tools/gen_events.py
