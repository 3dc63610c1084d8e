#!/usr/bin/env bash
# Runs a command with the toolchain environment that scripts/setup.sh chose (see toolchain.sh):
#   scripts/in-toolchain.sh cargo leptos build --release
# In the command, the word @LIB_ARGS@ expands to the extra cargo-leptos flags of this machine.
set -euo pipefail
ONRAMP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ONRAMP_ROOT
# shellcheck source=scripts/toolchain.sh
. "$ONRAMP_ROOT/scripts/toolchain.sh"
onramp_toolchain_env
args=()
for a in "$@"; do
  if [ "$a" = "@LIB_ARGS@" ]; then
    # shellcheck disable=SC2206
    [ -n "$ONRAMP_LIB_ARGS" ] && args+=($ONRAMP_LIB_ARGS)
  else
    args+=("$a")
  fi
done
cd "$ONRAMP_ROOT"
exec "${args[@]}"
