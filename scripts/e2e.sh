#!/usr/bin/env bash
# Playwright in Debian's Chromium against the release build (make build first). Playwright starts
# Onramp and the fake GitLab itself (end2end/playwright.config.ts) and stops them afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../end2end"
for bin in ../target/release/onramp ../target/release/fake-gitlab ../target/release/example-platform ../target/site/pkg/onramp.wasm; do
  [ -e "$bin" ] || { echo "e2e: $bin is missing: run make build first" >&2; exit 2; }
done
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npx playwright test "$@"
