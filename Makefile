# Onramp. `make run` and `make test` do all set-up themselves (scripts/setup.sh, idempotent).
SHELL := /bin/bash
IN := scripts/in-toolchain.sh

.PHONY: run test setup setup-test build unit lint e2e screenshots bench fuzz soak fmt clean

run:
	scripts/run.sh

test:
	scripts/test.sh

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

# Release build: the server, and the fake GitLab and example platform the end-to-end tests and benchmarks talk to
# (release profile, one cargo invocation), the WASM (wasm-release profile), JS and CSS. No
# cargo-leptos needed; `cargo leptos watch` works too for those who have it.
build:
	scripts/build.sh

# One cargo invocation for every crate, so dependencies compile once. The black-box suites are one
# binary (server/tests/api/); crash.rs and fuzz.rs are apart. The fuzz test (2,000 requests) drives
# the release binary when it is built. The suites that use the database run again on a throw-away
# PostgreSQL (Debian's packages) with the same cargo selection, so nothing recompiles.
FUZZ_BINARY := $(wildcard $(CURDIR)/target/release/onramp)
TEST_CRATES := -p gitlab -p app -p fake-gitlab -p server --features app/ssr,gitlab/client
unit:
	ONRAMP_FUZZ_BINARY=$(FUZZ_BINARY) $(IN) cargo test $(TEST_CRATES)
	scripts/with-postgres.sh $(IN) cargo test $(TEST_CRATES) --test api --test crash

lint:
	$(IN) cargo fmt --all --check
	python3 scripts/module-cycles.py --self-test
	python3 scripts/module-cycles.py
	$(IN) cargo clippy $(TEST_CRATES) --all-targets -- -D warnings
	$(IN) cargo clippy -p app --features hydrate -- -D warnings
	$(IN) cargo clippy -p gitlab -- -D warnings

e2e:
	scripts/e2e.sh

# Every page of the wizard in Chromium, light and dark, 1280 and 360 px: PNGs in docs/screenshots/.
screenshots: setup-test build
	scripts/e2e.sh --config playwright.screenshots.config.ts

bench: build
	scripts/setup.sh --bench
	scripts/bench.sh

# 10,000 generated requests against the release build (CI runs 2,000 in `make unit`).
fuzz: setup-test build
	scripts/fuzz.sh

# Load on step pages while checks wait on a slow GitLab; figures to BENCHMARKS.md.
soak: setup-test build
	scripts/soak.sh

fmt:
	$(IN) cargo fmt --all

clean:
	cargo clean
