# Onramp. `make run` and `make test` do all set-up themselves (scripts/setup.sh, idempotent).
SHELL := /bin/bash
IN := scripts/in-toolchain.sh

.PHONY: run test setup setup-test build unit lint e2e bench fmt clean

run:
	scripts/run.sh

test:
	scripts/test.sh

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

# Release build: the server and the fake GitLab the end-to-end tests and benchmarks talk to
# (release profile, one cargo invocation), the WASM (wasm-release profile), JS and CSS. No
# cargo-leptos needed; `cargo leptos watch` works too for those who have it.
build:
	scripts/build.sh

# The server's tests run twice: on SQLite, then on a throw-away PostgreSQL (Debian's packages).
unit:
	$(IN) cargo test -p app --features ssr
	$(IN) cargo test -p server
	scripts/with-postgres.sh $(IN) cargo test -p server --test integration --test accounts

lint:
	$(IN) cargo fmt --all --check
	$(IN) cargo clippy -p app --features ssr --all-targets -- -D warnings
	$(IN) cargo clippy -p app --features hydrate -- -D warnings
	$(IN) cargo clippy -p server --all-targets -- -D warnings

e2e:
	scripts/e2e.sh

bench: setup-test build
	scripts/bench.sh

fmt:
	$(IN) cargo fmt --all

clean:
	cargo clean
