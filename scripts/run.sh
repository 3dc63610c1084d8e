#!/usr/bin/env bash
# `make run`: set-up (idempotent), the release build, then Onramp in the foreground. Prints how long
# set-up and build took, so a first run on a fresh machine is measured every time it happens.
set -euo pipefail
ONRAMP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ONRAMP_ROOT"
start=$SECONDS
scripts/setup.sh
setup_s=$((SECONDS - start))
scripts/build.sh
build_s=$((SECONDS - start - setup_s))
printf '=== timings\nsetup    %5ss\nbuild    %5ss\n' "$setup_s" "$build_s"
echo "Onramp on http://${LEPTOS_SITE_ADDR:-127.0.0.1:3000}"
exec scripts/in-toolchain.sh ./target/release/onramp "$@"
