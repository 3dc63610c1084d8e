#!/usr/bin/env bash
# Every test: set-up, release build, Rust unit and integration tests (with 2,000 fuzzed requests
# against the release binary), fmt + clippy (warnings denied), Playwright in Debian's Chromium
# against the release build, and a short soak. Prints how long each phase took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A one-off build: incremental caches would only cost time and disk (they reach tens of GB).
export CARGO_INCREMENTAL=0
timings=()
phase() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== $name"
  "$@"
  timings+=("$(printf '%-8s %5ss' "$name" $((SECONDS - start)))")
}
report() {
  echo "=== timings"
  printf '%s\n' "${timings[@]}"
}
trap report EXIT
phase setup scripts/setup.sh --test
phase build make --no-print-directory build
phase unit make --no-print-directory unit
phase lint make --no-print-directory lint
phase e2e scripts/e2e.sh
# The soak's short form: load and slow checks at once, no error allowed (timings not asserted).
phase soak env SOAK_STRICT=1 SOAK_SECONDS=8 SOAK_SETTLE_SECONDS=2 SOAK_CONNECTIONS=64 SOAK_CHECKS=20 scripts/soak.sh
