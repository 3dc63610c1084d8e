#!/usr/bin/env bash
# Installs everything Onramp needs to build (and, with --test, to be tested), idempotently:
# a second run installs nothing. Works on an ordinary machine (rustup + internet) and on ours
# (rustup without a wasm32 std, only package registries reachable). See docs/TOOLCHAIN.md.
set -euo pipefail
ONRAMP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ONRAMP_ROOT
# shellcheck source=scripts/toolchain.sh
. "$ONRAMP_ROOT/scripts/toolchain.sh"

WANT_TEST=0
WANT_BENCH=0
[ "${1:-}" = "--test" ] && WANT_TEST=1
# --bench: --test, and nginx-light, which `make bench` compares the server with.
[ "${1:-}" = "--bench" ] && WANT_TEST=1 && WANT_BENCH=1

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing system packages (${missing[*]}) and no apt-get: install them by hand"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

onramp_detect_toolchain
log "toolchain mode: $ONRAMP_TOOLCHAIN_MODE"

# Debian's rustc-web builds the WASM when rustup cannot provide the wasm32 std, and in either mode
# it builds the small WASM (std rebuilt, abort without messages: scripts/toolchain.sh). On a
# machine without apt the ordinary WASM build is used. cargo-leptos is not installed at all
# (scripts/build.sh does its job; installing it took 31 minutes on 2 cores).
if [ "$ONRAMP_TOOLCHAIN_MODE" = debian ]; then
  apt_ensure rustc-web cargo-web rust-web-src rust-web-llvm lld-22 rustfmt-web rust-web-clippy
elif command -v apt-get >/dev/null 2>&1; then
  apt_ensure rustc-web cargo-web rust-web-src rust-web-llvm lld-22
fi

onramp_toolchain_env

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' "$ONRAMP_ROOT/Cargo.lock")
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WB_VERSION\$"; then
  log "installing wasm-bindgen-cli $WB_VERSION"
  (cd "$ONRAMP_ROOT" && cargo install wasm-bindgen-cli --version "$WB_VERSION" --force)
fi

# npm: binaryen (wasm-opt; Debian's 108 breaks the module), esbuild (minifies JS and CSS), Playwright.
if [ ! -x "$ONRAMP_ROOT/end2end/node_modules/.bin/wasm-opt" ] || [ ! -x "$ONRAMP_ROOT/end2end/node_modules/.bin/esbuild" ] ||
  [ "$ONRAMP_ROOT/end2end/package-lock.json" -nt "$ONRAMP_ROOT/end2end/node_modules/.package-lock.json" ]; then
  log "npm ci (end2end)"
  (cd "$ONRAMP_ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$WANT_TEST" = 1 ]; then
  # Debian's Chromium for Playwright (no browser downloads), PostgreSQL for the second DB run,
  # wrk for `make soak` and `make bench`.
  apt_ensure chromium postgresql wrk
  if [ "$ONRAMP_TOOLCHAIN_MODE" = rustup ]; then
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
  fi
fi
if [ "$WANT_BENCH" = 1 ]; then
  # Only for `make bench` (not CI): installing it may start the distribution's nginx service.
  apt_ensure nginx-light
fi
log "ready"
