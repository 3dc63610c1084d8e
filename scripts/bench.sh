#!/usr/bin/env bash
# Benchmarks (run by `make bench` after a release build); writes BENCHMARKS.md.
#  1. What a browser downloads to run a step page: JS + WASM, raw / gzip -9 / brotli q11.
#  2. The connection check against a fake GitLab that answers every request after 200 ms:
#     the whole check should take about one round trip (target <= 1.3 x).
#  3. The drawings of steps 5-11 as served (inline SVG), raw / brotli q11 (target <= 6 KB each).
#  4. Hydration of step 8 in Chromium after DOMContentLoaded (end2end/tests/hydration.spec.ts).
#  5. Serving pages against nginx, and the server's memory (scripts/bench-serve.sh).
#  6. Choosing groups and projects at 10,000 projects (scripts/bench-scope.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PKG=target/site/pkg
LATENCY_MS=${LATENCY_MS:-200}
RUNS=${RUNS:-15}

sizes=$(node -e '
const fs = require("fs"), zlib = require("zlib");
const rows = [];
let total = [0, 0, 0];
for (const f of process.argv.slice(1)) {
  const raw = fs.readFileSync(f);
  const gz = zlib.gzipSync(raw, { level: 9 }).length;
  const br = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  total = [total[0] + raw.length, total[1] + gz, total[2] + br];
  rows.push(`| ${f.split("/").pop()} | ${raw.length} | ${gz} | ${br} |`);
}
rows.push(`| **JS + WASM** | **${total[0]}** | **${total[1]}** | **${total[2]}** |`);
console.log(rows.join("\n"));
' "$PKG/onramp.js" "$PKG/onramp.wasm")
css=$(wc -c < "$PKG/onramp.css")

port=$((20000 + RANDOM % 20000))
./target/release/fake-gitlab --port "$port" --latency-ms "$LATENCY_MS" > /dev/null &
fake=$!
trap 'kill $fake 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/users/sign_in" > /dev/null 2>&1 && break; sleep 0.1; done

rtts=()
checks=()
for _ in $(seq "$RUNS"); do
  rtts+=("$(curl -s -o /dev/null -w '%{time_total}' -H 'PRIVATE-TOKEN: glpat-good' "http://127.0.0.1:$port/api/v4/user" | awk '{printf "%d", $1 * 1000}')")
  ms=$(ONRAMP_OUTBOUND_ALLOW=127.0.0.1 ONRAMP_GITLAB_TOKEN=glpat-good ./target/release/onramp check --json --base-url "http://127.0.0.1:$port" \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s);if(!r.ok){process.exit(1)}console.log(r.elapsed_ms)})')
  checks+=("$ms")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rtt=$(median "${rtts[@]}")
check=$(median "${checks[@]}")
ratio=$(awk -v c="$check" -v r="$rtt" 'BEGIN {printf "%.2f", c / r}')

# 3. The figures, as a step page carries them (gitlab.com in the address bar).
site_port=$((20000 + RANDOM % 20000))
data=$(mktemp -d)
ONRAMP_DATA_DIR="$data" LEPTOS_SITE_ADDR="127.0.0.1:$site_port" DATABASE_URL= ONRAMP_SECRET_KEY= ./target/release/onramp > /dev/null 2>&1 &
site=$!
trap 'kill $fake $site 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$site_port/healthz" > /dev/null 2>&1 && break; sleep 0.1; done
figures=$(for n in 5 6 7 8 9 10 11; do
  curl -fs "http://127.0.0.1:$site_port/integrations/gitlab/step/$n?base=https%3A%2F%2Fgitlab.com" | node -e '
const zlib = require("zlib");
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  // The outer <svg> ends where the drawing div does: it holds a nested <svg>.
  const m = s.match(/<svg class="figure-svg"[\s\S]*?<\/svg>(?=<\/div>)/);
  if (!m) { console.error("no figure on step " + process.argv[1]); process.exit(1); }
  const raw = Buffer.from(m[0]);
  const br = zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
  console.log(`| ${process.argv[1]} | ${raw.length} | ${br} |`);
});' "$n"
done)
kill $site 2>/dev/null || true

hydration_json=$(mktemp)
ONRAMP_HYDRATION_OUT="$hydration_json" scripts/e2e.sh tests/hydration.spec.ts > /dev/null
hydration=$(node -e 'const f=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(`first load ${f.first_ms} ms, median of ${f.loads} more loads ${f.median_ms} ms`)' "$hydration_json")
rm -f "$hydration_json"

scripts/bench-section.py sizes <<MD
## What a browser downloads to run a step page

\`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m). Release build
(\`scripts/build.sh\`: WASM in the \`wasm-release\` profile, wasm-opt -Oz, JS minified by esbuild).
Budget: JS + WASM at most 28 KB brotli (was 60 KB).

| file | raw bytes | gzip -9 | brotli q11 |
|---|---|---|---|
$sizes

The stylesheet (onramp.css, $css bytes raw) is not counted: pages render and work without it
loading any script.

Hydration of step 8 in Chromium (\`end2end/tests/hydration.spec.ts\`, Performance API: the island's
mark on \`<html>\` after \`domContentLoadedEventEnd\`; target <= 100 ms): $hydration.
MD
scripts/bench-section.py figures <<MD
## The drawings of the GitLab steps

\`make bench\` on $(date -u +%Y-%m-%d): the inline SVG of steps 5-11 as the release server renders it
(\`?base=https://gitlab.com\`), before the page's own compression. Target: each at most 6 KB brotli. They
are markup in the page, not script: the JS + WASM budget above is unchanged.

| step | raw bytes | brotli q11 |
|---|---|---|
$figures
MD
scripts/bench-section.py check <<MD
## Connection check latency

\`make bench\` on $(date -u +%Y-%m-%d). Fake GitLab (\`fake-gitlab --latency-ms $LATENCY_MS\`) answering every
request after $LATENCY_MS ms; \`onramp check --json\` against it, $RUNS runs, medians. Target: the whole
check within 1.3 x one round trip.

| one round trip (curl GET /api/v4/user) | whole check (elapsed_ms) | ratio |
|---|---|---|
| $rtt ms | $check ms | $ratio x |
MD
scripts/bench-serve.sh
scripts/bench-scope.py | scripts/bench-section.py scope

# The selection rules at 20,000 paths per list (issue 21): the gitlab crate's timed test, which
# `make test` never runs (it is #[ignore]d; the unit tests count the work instead).
rules=$(scripts/in-toolchain.sh cargo test -q -p gitlab --lib -- --ignored --nocapture selection_rules_timed 2>/dev/null | grep '^selection of')
scripts/bench-section.py selection <<MD
## Selection rules at 20,000 paths per list

\`make bench\` on $(date -u +%F), $(nproc) cores, test profile (unoptimised):
\`scripts/in-toolchain.sh cargo test -p gitlab --lib -- --ignored --nocapture selection_rules_timed\`
(20,000 groups, 20,000 projects, 20,000 exclusions, 3-4 levels deep).

    $rules
MD
cat BENCHMARKS.md
