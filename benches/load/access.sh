#!/usr/bin/env bash
# What an access line costs: CPU-seconds per memory hit with `log.access = true` against
# `log.access = false`, imgrelay alone on one core and wrk on the other (taskset), runs
# alternating on/off/off/on… so that other work on the machine weighs on both sides alike.
#
#   bash benches/load/access.sh              12 runs (6 on, 6 off) of 8 s
#   RUNS=10 DURATION=6 bash benches/load/access.sh
#
# Environment (all optional): RUNS (even; default 12), DURATION (s per run; 8), CONNECTIONS (2),
# IMGRELAY_BIN (default target/release/imgrelay; build it first), OUT_DIR (target/bench-access),
# PORT (first of two loopback ports; 18480), CPUS ("0,1": imgrelay's core, then wrk's).
#
# Each run starts a fresh imgrelay (memory tier only, text log to a file as in production),
# warms the one URL (a 512 px JPEG variant of tests/fixtures/photo.jpg from a loopback static
# origin), then runs wrk on it. The CPU imgrelay used during the wrk run (utime + stime of every
# thread from /proc/PID/stat, its logging thread included) divided by the requests wrk counted is
# the run's CPU per hit. Prints one line per run and the medians, min and max per mode; writes
# them to $OUT_DIR/results.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-12} DURATION=${DURATION:-8} CONNECTIONS=${CONNECTIONS:-2}
IMGRELAY_BIN=${IMGRELAY_BIN:-$ROOT/target/release/imgrelay}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-access}
PORT=${PORT:-18480} CPUS=${CPUS:-0,1}
RELAY_CPU=${CPUS%%,*} WRK_CPU=${CPUS##*,}
ORIGIN_PORT=$((PORT + 1))

command -v wrk >/dev/null || { echo "wrk is missing (Debian package wrk)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is missing (Debian package util-linux)" >&2; exit 1; }
[[ -x $IMGRELAY_BIN ]] || { echo "no $IMGRELAY_BIN: cargo build --release first" >&2; exit 1; }

mkdir -p "$OUT_DIR/origin"
cp "$ROOT/tests/fixtures/photo.jpg" "$OUT_DIR/origin/photo.jpg"
: >"$OUT_DIR/runs.tsv"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_http() { # wait_http URL: until it answers 200, 10 s at most
  local i
  for i in $(seq 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

python3 -m http.server "$ORIGIN_PORT" --bind 127.0.0.1 -d "$OUT_DIR/origin" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/photo.jpg"
URL="http://127.0.0.1:$PORT/?url=http%3A%2F%2F127.0.0.1%3A$ORIGIN_PORT%2Fphoto.jpg&w=512&h=512&fit=inside&q=80"

cpu_ticks() { # utime + stime of PID (all its threads)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

one_run() { # one_run MODE(on|off) N
  local mode=$1 n=$2 access pid before after requests
  [[ $mode == on ]] && access=true || access=false
  env -u IMGRELAY_BIN \
    IMGRELAY_LOG__ACCESS=$access \
    IMGRELAY_SECURITY__ALLOW_NETWORKS='["127.0.0.0/8"]' \
    IMGRELAY_SECURITY__ALLOWED_PORTS='[]' \
    IMGRELAY_CACHE__MEMORY_BYTES=256MiB \
    IMGRELAY_CACHE__DISK_BYTES=0 \
    taskset -c "$RELAY_CPU" "$IMGRELAY_BIN" --config "$ROOT/proxy.toml" \
    --listen "127.0.0.1:$PORT" serve 2>"$OUT_DIR/run$n.$mode.log" &
  pid=$!
  PIDS+=("$pid")
  wait_http "http://127.0.0.1:$PORT/healthz"
  curl -fs -o /dev/null "$URL" # the miss; every request after it is a memory hit
  [[ $(curl -fs -o /dev/null -D - "$URL" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}') == HIT-MEMORY ]] ||
    { echo "run $n: the URL is no memory hit" >&2; exit 1; }
  before=$(cpu_ticks "$pid")
  taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$URL" >"$OUT_DIR/run$n.$mode.wrk.txt"
  after=$(cpu_ticks "$pid")
  kill -TERM "$pid"
  wait "$pid" || true
  requests=$(awk '/requests in/ { print $1 }' "$OUT_DIR/run$n.$mode.wrk.txt")
  grep -q "Non-2xx" "$OUT_DIR/run$n.$mode.wrk.txt" && { echo "run $n: errors" >&2; exit 1; }
  printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$mode" "$requests" "$((after - before))" "$(getconf CLK_TCK)" >>"$OUT_DIR/runs.tsv"
  printf 'run %2d  access %-3s  %8d requests  %6.0f req/s  %5.2f CPU-s  %6.2f µs CPU per hit\n' \
    "$n" "$mode" "$requests" "$(echo "$requests / $DURATION" | bc -l)" \
    "$(echo "($after - $before) / $(getconf CLK_TCK)" | bc -l)" \
    "$(echo "($after - $before) / $(getconf CLK_TCK) / $requests * 1000000" | bc -l)"
}

# on off off on on off off on …: each mode runs first in half of the pairs
for ((n = 1; n <= RUNS; n++)); do
  if (((n + 1) / 2 % 2 == 1)); then mode=$([[ $((n % 2)) == 1 ]] && echo on || echo off)
  else mode=$([[ $((n % 2)) == 1 ]] && echo off || echo on); fi
  one_run "$mode" "$n"
done

python3 - "$OUT_DIR/runs.tsv" <<'PY' | tee "$OUT_DIR/results.txt"
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
per = {"on": [], "off": []}
for n, mode, requests, ticks, hz in rows:
    per[mode].append(int(ticks) / int(hz) / int(requests) * 1e6)
for mode in ("off", "on"):
    v = sorted(per[mode])
    print(f"access {mode:3}: {len(v)} runs, median {statistics.median(v):.2f} µs CPU per hit "
          f"(min {v[0]:.2f}, max {v[-1]:.2f})")
ratio = statistics.median(per["on"]) / statistics.median(per["off"])
print(f"on / off (medians): {ratio:.3f}")
PY
