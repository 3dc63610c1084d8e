#!/usr/bin/env bash
# Serving pages (run by `make bench` after a release build): the release server against nginx
# serving the same bytes as a static file, in the same run, on the same machine; then the
# server's memory through a minute of load, connection checks and sign-ups. Writes the `serve`
# section of BENCHMARKS.md. Figures only: nothing here passes or fails on a number.
#
#  1. Pages, each for BENCH_SECONDS (10) with wrk, 64 connections, `Accept-Encoding: br, gzip`:
#     step 8 with `?base=`, step 3 without (anonymous), step 12 signed in (session lookup
#     included). nginx (Debian's nginx-light, started here) serves each page's brotli bytes.
#  2. Memory: RSS idle after start; after 60 s of step pages (anonymous steps 1-11 with and
#     without `?base=`, and step 12 signed in) during which 100 connection checks (10 at a time,
#     fake GitLab answering after 50 ms) and 20 sign-ups run; and a minute after that.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH=${BENCH_SECONDS:-10}
LOAD_SECONDS=${BENCH_LOAD_SECONDS:-60}
SETTLE_SECONDS=${BENCH_SETTLE_SECONDS:-60}
CONNECTIONS=64
for tool in wrk nginx curl; do
  command -v "$tool" > /dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "bench: $tool is missing (scripts/setup.sh --test installs it)" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
fake_port=$((port + 1))
nginx_port=$((port + 2))
pids=()
cleanup() {
  kill "${pids[@]}" 2> /dev/null || true
  [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
./target/release/fake-gitlab --port "$fake_port" --latency-ms 50 > /dev/null &
pids+=($!)
# As served by default (access log on, at info), to a file as a service manager would take it.
ONRAMP_DATA_DIR="$work/data" LEPTOS_SITE_ADDR="127.0.0.1:$port" ONRAMP_OUTBOUND_ALLOW=127.0.0.1 \
  ONRAMP_CHECK_RATE_PER_MIN=1000000 ONRAMP_SIGNUPS_PER_IP_PER_HOUR=1000000 \
  ./target/release/onramp > "$work/onramp.log" 2>&1 &
onramp=$!
pids+=($onramp)
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" > /dev/null 2>&1 && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$onramp/status"; }
sleep 2
rss_idle=$(rss)

signup() { # signup EMAIL JAR
  curl -fs -o /dev/null -c "$2" -H "Origin: $url" -H 'Accept: text/html' \
    --data-urlencode "email=$1" --data-urlencode password='correct horse battery staple' "$url/api/auth/signup"
}
signup bench@example.com "$work/jar"
cookie=$(sed 's/^#HttpOnly_//' "$work/jar" | awk '!/^#/ && NF >= 7 {printf "%s=%s; ", $6, $7}')

mkdir -p "$work/nginx/www"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/www;
    location / { default_type text/html; add_header Content-Encoding br; try_files /page.br =404; }
  }
}
NGINX
"$NGINX" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -p "$work/nginx"
for _ in $(seq 50); do [ -f "$work/nginx/nginx.pid" ] && break; sleep 0.1; done

# bench NAME PATH [COOKIE]: a table row, onramp against nginx serving the same brotli bytes.
rows=""
bench() {
  local name=$1 path=$2 cookie=${3:-}
  local headers=(-H 'Accept-Encoding: br, gzip')
  [ -n "$cookie" ] && headers+=(-H "Cookie: $cookie")
  curl -fs "${headers[@]}" -o "$work/nginx/www/page.br" "$url$path"
  local bytes
  bytes=$(wc -c < "$work/nginx/www/page.br")
  wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" --latency "${headers[@]}" "http://127.0.0.1:$nginx_port$path" > "$work/nginx.txt"
  wrk -t 2 -c "$CONNECTIONS" -d "${SECONDS_EACH}s" --latency "${headers[@]}" "$url$path" > "$work/onramp.txt"
  local n_rps o_rps o50 o99 n99 errors
  n_rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/nginx.txt")
  o_rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/onramp.txt")
  o50=$(awk '$1 == "50%" {print $2}' "$work/onramp.txt")
  o99=$(awk '$1 == "99%" {print $2}' "$work/onramp.txt")
  n99=$(awk '$1 == "99%" {print $2}' "$work/nginx.txt")
  errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$work/onramp.txt")
  rows+="| $name | $bytes | $o_rps | $n_rps | **$(awk -v o="$o_rps" -v n="$n_rps" 'BEGIN {printf "%.2f", o / n}')x** | $o50 | **$o99** | $n99 | ${errors:-none} |"$'\n'
  echo "bench: $name: onramp $o_rps req/s (p99 $o99), nginx $n_rps req/s" >&2
}
bench "step 8, \`?base=https://gitlab.com\`, anonymous" "/integrations/gitlab/step/8?base=https%3A%2F%2Fgitlab.com"
bench "step 3, no \`?base=\`, anonymous" "/integrations/gitlab/step/3"
bench "step 12, signed in" "/integrations/gitlab/step/12" "$cookie"

# 2. Memory through a minute of everything at once.
cat > "$work/steps.lua" <<'LUA'
local paths = {}
for n = 1, 11 do
  paths[#paths + 1] = "/integrations/gitlab/step/" .. n
  paths[#paths + 1] = "/integrations/gitlab/step/" .. n .. "?base=https%3A%2F%2Fgitlab.example.com%2Fgitlab"
end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
LUA
check() {
  curl -s -o /dev/null -w '%{http_code}\n' -b "$jar" -H "Origin: $url" -H 'Accept: application/json' \
    --data-urlencode "base_url=http://127.0.0.1:$fake_port" --data-urlencode token=glpat-good "$url/api/gitlab/validate"
}
export -f check
export jar="$work/jar" url fake_port
wrk -t 2 -c $((CONNECTIONS - 8)) -d "${LOAD_SECONDS}s" -s "$work/steps.lua" -H 'Accept-Encoding: br, gzip' "$url" > "$work/load.txt" &
load=$!
wrk -t 1 -c 8 -d "${LOAD_SECONDS}s" -H 'Accept-Encoding: br, gzip' -H "Cookie: $cookie" "$url/integrations/gitlab/step/12" > "$work/load12.txt" &
load12=$!
sleep 5
seq 100 | xargs -P 10 -I{} bash -c check > "$work/checks.txt"
seq 20 | xargs -P 5 -I{} curl -s -o /dev/null -w '%{http_code}\n' -H "Origin: $url" -H 'Accept: text/html' \
  --data-urlencode "email=bench{}@example.com" --data-urlencode password='correct horse battery staple' \
  "$url/api/auth/signup" > "$work/signups.txt"
wait "$load" "$load12"
rss_after=$(rss)
sleep "$SETTLE_SECONDS"
rss_settled=$(rss)
checks_ok=$(grep -c '^200$' "$work/checks.txt" || true)
signups_ok=$(grep -c '^30[23]$' "$work/signups.txt" || true)
pages=$(($(awk '/requests in/ {print $1}' "$work/load.txt") + $(awk '/requests in/ {print $1}' "$work/load12.txt")))

scripts/bench-section.py serve <<MD
## Serving pages: against nginx, and memory

\`make bench\` (scripts/bench-serve.sh) on $(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),
release build, default logging (an access-log line per request, to a file). wrk, $CONNECTIONS connections,
${SECONDS_EACH} s per row, \`Accept-Encoding: br, gzip\`; nginx-light ($("$NGINX" -v 2>&1 | sed 's/.*nginx\///')) serves the
same page's brotli bytes as a static file in the same run (access log on, to a file), both on this machine
beside wrk. Targets: anonymous step pages >= 0.5x nginx, p99 <= 10 ms; step 12 signed in >= 0.3x nginx,
p99 <= 15 ms.

| page | brotli bytes | Onramp req/s | nginx req/s | ratio | p50 | p99 | nginx p99 | errors |
|---|---|---|---|---|---|---|---|---|
${rows}
Resident memory (target: <= 25 MB idle, <= 40 MB after the load, back near idle a minute later).
The load: ${LOAD_SECONDS} s of anonymous steps 1-11 with and without \`?base=\` ($((CONNECTIONS - 8)) connections) and
step 12 signed in (8 connections), $pages pages; meanwhile 100 connection checks, 10 at a time,
against a fake GitLab answering after 50 ms ($checks_ok answered 200), and 20 sign-ups, 5 at a time
($signups_ok signed up).

| idle after start | after the load | a minute later |
|---|---|---|
| **$rss_idle MB** | **$rss_after MB** | **$rss_settled MB** |
MD
sed -n '/<!-- serve -->/,/<!-- \/serve -->/p' BENCHMARKS.md
