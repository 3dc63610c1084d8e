#!/usr/bin/env bash
# The release build without cargo-leptos: the same outputs `cargo leptos build --release` makes
# (target/release/onramp, target/site/pkg/onramp.{js,wasm,css}, public/ copied into target/site),
# plus the fake GitLab the tests and benchmarks use, from the same cargo invocation as the server
# so the dependency graph compiles once. Installing cargo-leptos took 31 of the 48 minutes of a
# first `make run` on a fresh machine; this script needs only cargo, wasm-bindgen-cli and npm
# packages (binaryen for wasm-opt, esbuild to minify JS and CSS). `cargo leptos watch` keeps
# working for those who have it: Cargo.toml's [workspace.metadata.leptos] describes the same site.
#
#   scripts/build.sh            server + fake GitLab + site
#   scripts/build.sh site       only the WASM, JS and CSS
#   scripts/build.sh server     only the binaries
#
# Run-time settings never reach the compiler: every LEPTOS_* variable is removed from the build's
# environment and LEPTOS_OUTPUT_NAME (read by leptos at compile time) is always "onramp", so a
# `make run` with another LEPTOS_SITE_ADDR rebuilds nothing.
set -euo pipefail
ONRAMP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ONRAMP_ROOT
# shellcheck source=scripts/toolchain.sh
. "$ONRAMP_ROOT/scripts/toolchain.sh"
onramp_toolchain_env
cd "$ONRAMP_ROOT"

what=${1:-all}
case "$what" in all | site | server) ;; *)
  echo "usage: scripts/build.sh [all|site|server]" >&2
  exit 2
  ;;
esac

while read -r var; do unset "$var"; done < <(compgen -e | grep '^LEPTOS_' || true)
export LEPTOS_OUTPUT_NAME=onramp

SITE=target/site
PKG=$SITE/pkg
FRONT_TARGET=target/front # a target dir of its own, as cargo-leptos uses: both builds run at once
WASM_IN=$FRONT_TARGET/wasm32-unknown-unknown/wasm-release/frontend.wasm

log() { printf '[build] %s\n' "$*" >&2; }

build_server() {
  log "server, fake GitLab and example platform (cargo build --release)"
  cargo build --release -p server -p fake-gitlab -p example-platform --bins
}

build_wasm() {
  local extra=() small=()
  if onramp_small_wasm; then
    # std rebuilt with the island, aborting on a panic without formatting a message
    # (scripts/toolchain.sh: onramp_small_wasm).
    log "WASM (cargo build --target wasm32-unknown-unknown --profile wasm-release, Debian's rustc-web, std rebuilt, abort without messages)"
    small=(RUSTUP_TOOLCHAIN=/usr RUSTC_BOOTSTRAP=1 "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=$ONRAMP_SMALL_WASM_RUSTFLAGS")
    extra=(-Zbuild-std=std,panic_abort)
  else
    log "WASM (cargo build --target wasm32-unknown-unknown --profile wasm-release)"
    # debian mode: std is rebuilt for wasm32 (see scripts/toolchain.sh)
    [ -n "${ONRAMP_WASM_CARGO_ARGS:-}" ] && read -r -a extra <<<"$ONRAMP_WASM_CARGO_ARGS"
  fi
  env "${small[@]}" cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release \
    --target-dir "$FRONT_TARGET" "${extra[@]}"
}

# wasm-bindgen, wasm-opt, JS minification: only when the WASM changed (each run costs ~10 s).
package_wasm() {
  mkdir -p "$PKG"
  if [ -f "$PKG/onramp.wasm" ] && [ -f "$PKG/onramp.js" ] && [ "$PKG/onramp.wasm" -nt "$WASM_IN" ]; then
    log "WASM unchanged: $PKG kept"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  wasm-bindgen --target web --no-typescript --out-name onramp --out-dir "$tmp" "$WASM_IN"
  # cargo-leptos' default wasm-opt flags (Debian's binaryen 108 breaks the module: npm's is used)
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int -o "$tmp/onramp.wasm" "$tmp/onramp_bg.wasm"
  esbuild "$tmp/onramp.js" --minify --log-level=warning --outfile="$tmp/onramp.min.js"
  mv "$tmp/onramp.min.js" "$PKG/onramp.js"
  mv "$tmp/onramp.wasm" "$PKG/onramp.wasm"
  rm -rf "$tmp"
}

build_assets() {
  mkdir -p "$PKG"
  # browser targets as cargo-leptos' "defaults" browserslist query resolves them today
  esbuild style/main.css --minify --log-level=warning --target=chrome109,edge120,firefox115,safari15.6 \
    --outfile="$PKG/onramp.css"
  cp -R public/. "$SITE/"
}

case "$what" in
  server) build_server ;;
  site)
    build_wasm
    package_wasm
    build_assets
    ;;
  all)
    # Both cargo builds at once (as cargo-leptos does): the WASM's single-threaded LTO link
    # overlaps the server's compilation.
    mkdir -p target
    build_wasm >"$ONRAMP_ROOT/target/.wasm-build.log" 2>&1 &
    wasm_pid=$!
    server_status=0
    build_server || server_status=$?
    wasm_status=0
    wait "$wasm_pid" || wasm_status=$?
    if [ "$wasm_status" != 0 ]; then
      cat "$ONRAMP_ROOT/target/.wasm-build.log" >&2
      log "the WASM build failed"
      exit "$wasm_status"
    fi
    [ "$server_status" = 0 ] || exit "$server_status"
    package_wasm
    build_assets
    ;;
esac
log "done"
