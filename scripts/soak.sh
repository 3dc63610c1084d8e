#!/usr/bin/env bash
# `make soak`: 200 connections on step pages for 30 s (wrk) while connection checks run, 100 at a
# time, against a fake GitLab that answers every request after 2 s. Reports errors, step pages'
# latency percentiles and the server's resident memory before, after, and a minute later, into
# BENCHMARKS.md. Timings are figures, never asserted. With SOAK_STRICT=1 (CI's short form:
# scripts/test.sh) it writes nothing and fails on an error instead: a socket error or non-2xx
# step page, a check not answered 200, or a server that no longer answers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION=${SOAK_SECONDS:-30}
CONNECTIONS=${SOAK_CONNECTIONS:-200}
CHECKS_AT_ONCE=${SOAK_CHECKS:-100}
LATENCY_MS=${SOAK_GITLAB_LATENCY_MS:-2000}
command -v wrk > /dev/null || { echo "soak: wrk is missing (scripts/setup.sh --test installs it)" >&2; exit 2; }
for bin in target/release/onramp target/release/fake-gitlab; do
  [ -x "$bin" ] || { echo "soak: $bin is missing: run make build first" >&2; exit 2; }
done

work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
fake_port=$((port + 1))
pids=()
cleanup() { kill "${pids[@]}" 2> /dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
./target/release/fake-gitlab --port "$fake_port" --latency-ms "$LATENCY_MS" > /dev/null &
pids+=($!)
ONRAMP_DATA_DIR="$work/data" LEPTOS_SITE_ADDR="127.0.0.1:$port" ONRAMP_OUTBOUND_ALLOW=127.0.0.1 \
  ONRAMP_CHECK_RATE_PER_MIN=1000000 ONRAMP_LOG=warn ./target/release/onramp > "$work/onramp.log" 2>&1 &
onramp=$!
pids+=($onramp)
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" > /dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$onramp/status"; }
rss_idle=$(rss)

# A user whose session runs the checks.
jar="$work/cookies"
curl -fs -o /dev/null -c "$jar" -H "Origin: $url" -H 'Accept: text/html' \
  --data-urlencode email=soak@example.com --data-urlencode password='correct horse battery staple' \
  "$url/api/auth/signup"
check() {
  curl -s -o /dev/null -w '%{http_code}\n' -b "$jar" -H "Origin: $url" -H 'Accept: application/json' \
    --data-urlencode "base_url=http://127.0.0.1:$fake_port" --data-urlencode token=glpat-good \
    "$url/api/gitlab/validate"
}
export -f check
export jar url fake_port

# Checks in waves of CHECKS_AT_ONCE until the page load ends.
(
  end=$((SECONDS + DURATION))
  while [ $SECONDS -lt $end ]; do
    seq "$CHECKS_AT_ONCE" | xargs -P "$CHECKS_AT_ONCE" -I{} bash -c check
  done
) > "$work/checks.txt" &
checks=$!
sleep 0.5
page="/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab.com"
wrk -t 2 -c "$CONNECTIONS" -d "${DURATION}s" --latency -H 'Accept-Encoding: br, gzip' "$url$page" > "$work/wrk.txt"
wait "$checks"
rss_after=$(rss)
sleep "${SOAK_SETTLE_SECONDS:-60}"
rss_settled=$(rss)

rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
pct() { awk -v p="$1" '$1 == p {print $2}' "$work/wrk.txt"; }
total=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
socket_errors=$(awk '/Socket errors/ {print}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
checks_total=$(wc -l < "$work/checks.txt")
checks_ok=$(grep -c '^200$' "$work/checks.txt" || true)
alive=$(curl -fs "$url/healthz" || echo "NOT ANSWERING")
cat "$work/wrk.txt"

if [ "${SOAK_STRICT:-0}" = 1 ]; then
  echo "soak: $total step pages, $rps req/s, p99 $(pct 99%), ${socket_errors:-no socket errors}, non-2xx ${non2xx:-0}; checks $checks_ok/$checks_total answered 200; RSS $rss_idle -> $rss_after -> $rss_settled MB; healthz $alive"
  [ -z "$socket_errors" ] && [ -z "$non2xx" ] && [ "$checks_ok" = "$checks_total" ] && [ "$checks_total" -gt 0 ] &&
    [ "$alive" = ok ] || { echo "soak: FAILED" >&2; exit 1; }
  exit 0
fi
{
  echo "## Soak: step pages under load while checks wait on a slow GitLab"
  echo
  echo "\`make soak\` (scripts/soak.sh) on $(date -u +%Y-%m-%d), $(nproc) cores: wrk, $CONNECTIONS connections,"
  echo "${DURATION} s on \`$page\` (brotli/gzip accepted), while connection checks ran $CHECKS_AT_ONCE at a"
  echo "time against a fake GitLab answering every request after $LATENCY_MS ms. Release build."
  echo
  echo "| step page requests | req/s | p50 | p90 | p99 | errors (socket, non-2xx) |"
  echo "|---|---|---|---|---|---|"
  echo "| $total | $rps | $(pct 50%) | $(pct 90%) | $(pct 99%) | ${socket_errors:-none}, ${non2xx:-0} |"
  echo
  echo "| checks | answered 200 | RSS idle | RSS after the load | RSS a minute later | /healthz after |"
  echo "|---|---|---|---|---|---|"
  echo "| $checks_total | $checks_ok | $rss_idle MB | $rss_after MB | $rss_settled MB | $alive |"
} | scripts/bench-section.py soak
sed -n '/<!-- soak -->/,/<!-- \/soak -->/p' BENCHMARKS.md
