#!/usr/bin/env bash
# `make fuzz`: the HTTP fuzzer (server/tests/fuzz.rs) against the release build, 10,000 requests
# by default. It fails on any answer of 500 or above, a request left without a complete answer,
# the process dying or panicking, or a secret it sent coming back or reaching the log.
#   ONRAMP_FUZZ_REQUESTS=50000 scripts/fuzz.sh     more requests
#   ONRAMP_FUZZ_SEED=1234 scripts/fuzz.sh          replay a run (the seed is printed first)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BINARY="$ROOT/target/release/onramp"
if [ ! -x "$BINARY" ]; then
  echo "fuzz: $BINARY is missing: run \`make build\` first." >&2
  exit 1
fi
# A one-off build of the test: incremental caches would only cost time and disk.
export CARGO_INCREMENTAL=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
ONRAMP_FUZZ_BINARY="$BINARY" ONRAMP_FUZZ_REQUESTS="${ONRAMP_FUZZ_REQUESTS:-10000}" \
  scripts/in-toolchain.sh cargo test -p gitlab -p app -p fake-gitlab -p server --features app/ssr,gitlab/client --test fuzz -- --nocapture 2>&1 | tee "$log" || status=$?
echo "=== fuzz summary"
summary=$(grep -a '^fuzz: [0-9]* requests' "$log" || echo "fuzz: no summary: the run stopped before the end (see above)")
echo "$summary"
if [ "$status" = 0 ]; then
  {
    echo "## HTTP fuzzing"
    echo
    echo "\`make fuzz\` (scripts/fuzz.sh, server/tests/fuzz.rs) on $(date -u +%Y-%m-%d), $(nproc) cores, against the"
    echo "release build: generated requests to every route (methods, paths, queries, bodies, headers,"
    echo "cookies, tokens; a third on raw TCP). Passed: no answer >= 500, no dropped connection, no panic,"
    echo "no secret in an answer or the log. \`make unit\` runs 2,000 of them on every CI run."
    echo
    echo "    $summary"
  } | scripts/bench-section.py fuzz
fi
exit "$status"
