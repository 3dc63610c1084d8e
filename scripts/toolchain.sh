# shellcheck shell=bash
# Sourced by scripts/setup.sh and the Makefile's recipes. Decides how the WASM half is built:
#   rustup mode  - the active rustup toolchain has (or can add) the wasm32-unknown-unknown target;
#   debian mode  - it cannot (no internet for rustup): use Debian's rustc-web 1.96 toolchain and
#                  rebuild std for wasm32 with -Zbuild-std (see docs/TOOLCHAIN.md).
# Exports ONRAMP_TOOLCHAIN_MODE, ONRAMP_WASM_CARGO_ARGS (extra flags for the WASM's cargo build,
# scripts/build.sh), ONRAMP_LIB_ARGS (the same for `cargo leptos`, for those who use it) and, in
# debian mode, RUSTUP_TOOLCHAIN=/usr and RUSTC_BOOTSTRAP=1. Nothing is committed that would break
# the other mode.

onramp_detect_toolchain() {
  if [ -n "${ONRAMP_TOOLCHAIN_MODE:-}" ]; then
    return 0
  fi
  if command -v rustup >/dev/null 2>&1 &&
    { rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown ||
      timeout 120 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; }; then
    ONRAMP_TOOLCHAIN_MODE=rustup
  else
    ONRAMP_TOOLCHAIN_MODE=debian
  fi
  export ONRAMP_TOOLCHAIN_MODE
}

onramp_toolchain_env() {
  onramp_detect_toolchain
  if [ "$ONRAMP_TOOLCHAIN_MODE" = debian ]; then
    export RUSTUP_TOOLCHAIN=/usr
    export RUSTC_BOOTSTRAP=1
    export ONRAMP_WASM_CARGO_ARGS="-Zbuild-std=std,panic_abort"
    export ONRAMP_LIB_ARGS="--lib-cargo-args=-Zbuild-std=std,panic_abort"
  else
    export ONRAMP_WASM_CARGO_ARGS=""
    export ONRAMP_LIB_ARGS=""
  fi
  # Tools installed by setup.sh: cargo binaries and the npm-provided wasm-opt (binaryen) and esbuild.
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$HOME/.cargo/bin:$ONRAMP_ROOT/end2end/node_modules/.bin:$PATH"
}

# The island's WASM is smallest with std rebuilt alongside it and a panic that aborts without
# formatting a message (measured: 105 -> 79 KB raw, 37.7 -> 28.8 KB brotli after wasm-opt). That
# takes a toolchain with std's sources that accepts -Z flags: Debian's rustc-web 1.96 with
# RUSTC_BOOTSTRAP=1, the one debian mode builds with anyway. Where it is missing, the WASM is built
# the ordinary way: bigger, the same behaviour. Used by scripts/build.sh for the WASM only; the
# server keeps the active toolchain.
ONRAMP_SMALL_WASM_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none"
onramp_small_wasm() {
  [ "${ONRAMP_SMALL_WASM:-1}" = 1 ] && [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] &&
    [ -d /usr/lib/rustlib/src/rust/library ] && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.9[6-9]'
}
