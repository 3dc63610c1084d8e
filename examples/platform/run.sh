#!/usr/bin/env bash
# Starts Acme Analytics (the example platform) against a running Onramp on the same machine:
# waits until Onramp answers, makes it a platform key with `onramp platform-key create` on
# Onramp's data directory (unless ONRAMP_PLATFORM_KEY is given), then runs the platform.
#
#   ONRAMP_URL=http://127.0.0.1:3000 ONRAMP_DATA_DIR=data examples/platform/run.sh
#
# Binaries: target/release/{onramp,example-platform} (make build), or ONRAMP_BIN / PLATFORM_BIN.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ONRAMP_URL=${ONRAMP_URL:-http://127.0.0.1:3000}
PLATFORM_ADDR=${PLATFORM_ADDR:-127.0.0.1:4000}
export ONRAMP_URL PLATFORM_ADDR
PUBLIC=${PLATFORM_PUBLIC_URL:-http://$PLATFORM_ADDR}
ONRAMP_BIN=${ONRAMP_BIN:-$ROOT/target/release/onramp}
PLATFORM_BIN=${PLATFORM_BIN:-$ROOT/target/release/example-platform}
# Until Onramp listens (bash's /dev/tcp: no curl needed), so its database exists.
hostport=${ONRAMP_URL#*://}
hostport=${hostport%%/*}
for _ in $(seq 1 600); do
  (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null && break
  sleep 0.1
done
if [ -z "${ONRAMP_PLATFORM_KEY:-}" ]; then
  ONRAMP_PLATFORM_KEY=$("$ONRAMP_BIN" platform-key create --name "Acme Analytics" \
    --scopes connect_sessions:write,connections:read,credentials:read,webhooks:write \
    --return-origin "$PUBLIC" | tail -n 1)
fi
export ONRAMP_PLATFORM_KEY
exec "$PLATFORM_BIN"
