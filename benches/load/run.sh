#!/usr/bin/env bash
# Side-by-side load harness: imgrelay against ipx (sharp), thumbor, oximg and nginx image_filter,
# on the same image corpus, the same loopback origin and the same machine, scenario by scenario.
#
#   bash benches/load/run.sh            full run: 20 s of load per server and scenario
#   QUICK=1 bash benches/load/run.sh    5 s per run
#
# Environment (all optional):
#   DURATION      seconds of load per server and scenario (default 20, or 5 with QUICK=1)
#   CONNECTIONS   concurrent connections (default 2), THREADS wrk threads (default 2)
#   SCENARIOS     comma list of scenario keys (default: all; see `plan.py scenarios`)
#   ROWS          comma list of table rows to run: imgrelay,ipx,thumbor,oximg,nginx,origin (default all)
#   BASE_PORT     first of twelve loopback ports (default 18400)
#   QUIET         before each load run, wait until the machine is at most this % busy (e.g. 10;
#                 default: do not wait), for at most QUIET_WAIT seconds (default 300)
#   RETRY_BG      repeat a load run (at most twice) when other work took more than this % of the
#                 machine during it, keeping the least disturbed attempt (default: no retries)
#   IMGRELAY_BIN  the imgrelay binary (default target/release/imgrelay, built if missing)
#   PEERS_DIR     where peers and venvs are installed (default /work/peers)
#   OUT_DIR       results, configs and logs (default target/bench-load)
#   CORPUS_DIR    the image corpus (default target/bench-corpus, built by corpus.sh if empty)
#
# Prints one markdown table per scenario and writes them to $OUT_DIR/results.md. Everything it
# starts is stopped on exit, and the exit fails if anything is left running.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PEERS_DIR=${PEERS_DIR:-/work/peers}
OUT_DIR=${OUT_DIR:-$ROOT/target/bench-load}
CORPUS_DIR=${CORPUS_DIR:-$ROOT/target/bench-corpus}
CORPUS_SCRIPT=${CORPUS_SCRIPT:-$ROOT/../shared/bench/corpus.sh}
if [[ ${QUICK:-0} == 1 ]]; then DURATION=${DURATION:-5}; else DURATION=${DURATION:-20}; fi
CONNECTIONS=${CONNECTIONS:-2}
THREADS=${THREADS:-2}
BASE_PORT=${BASE_PORT:-18400}
ROWS=${ROWS:-all}
IMGRELAY_BIN=${IMGRELAY_BIN:-$ROOT/target/release/imgrelay}
# servers (nginx above all) resolve paths against their own directories: make ours absolute
OUT_DIR=$(realpath -m "$OUT_DIR") CORPUS_DIR=$(realpath -m "$CORPUS_DIR")
PEERS_DIR=$(realpath -m "$PEERS_DIR") IMGRELAY_BIN=$(realpath -m "$IMGRELAY_BIN")
NPROC=$(nproc)
LOG_DIR=$OUT_DIR/logs
SRV_DIR=$OUT_DIR/servers
STATUS_DIR=$OUT_DIR/status
export BASE_PORT OUT_DIR CORPUS_DIR PEERS_DIR IMGRELAY_BIN

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# shellcheck source=install.sh
source "$HERE/install.sh"
# shellcheck source=servers.sh
source "$HERE/servers.sh"

SHM_DIR= # this run's own folder on tmpfs, for the peers' "memory" result caches
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_all || rc=1
  [[ -z $SHM_DIR ]] || rm -rf "$SHM_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 0. one run per output folder; fresh output folders -------------------------------------
mkdir -p "$OUT_DIR"
exec 9>"$OUT_DIR/.lock"
flock -n 9 || die "another run is using $OUT_DIR"
SHM_DIR=$(mktemp -d /dev/shm/imgrelay-bench.XXXXXX 2>/dev/null || mktemp -d)
chmod 755 "$SHM_DIR" # nginx's workers drop root and must reach their cache folder
rm -rf "${OUT_DIR:?}"/{plan,check,load,status,servers,logs,imgrelay.txt,results.md,results.json}
mkdir -p "$LOG_DIR" "$SRV_DIR" "$STATUS_DIR" "$OUT_DIR/plan" "$OUT_DIR/check" "$OUT_DIR/load" "$PEERS_DIR"
log "output in $OUT_DIR; peers in $PEERS_DIR; $DURATION s per run, $CONNECTIONS connections"

# ---- 1. tools and the corpus ----------------------------------------------------------------
ensure_tools || die "could not install wrk/curl/Python tools (see $LOG_DIR)"
PY=$PEERS_DIR/tools-venv/bin/python
if ! compgen -G "$CORPUS_DIR/*.jpg" >/dev/null; then
  log "building the corpus in $CORPUS_DIR (apt-get download of two wallpaper packages)"
  bash "$CORPUS_SCRIPT" "$CORPUS_DIR" >"$LOG_DIR/corpus.log" || die "corpus.sh failed"
fi
log "corpus: $(find "$CORPUS_DIR" -maxdepth 1 -type f | wc -l) files in $CORPUS_DIR"

# ---- 2. the plan: which row gets which URLs in which scenario --------------------------------
declare -A PORT=()
while read -r name port; do PORT[$name]=$port; done < <("$PY" "$HERE/plan.py" ports)
"$PY" "$HERE/plan.py" rows >"$OUT_DIR/plan/rows.tsv.tmp" 2>"$LOG_DIR/plan.log" ||
  die "plan.py failed (see $LOG_DIR/plan.log)"
mv "$OUT_DIR/plan/rows.tsv.tmp" "$OUT_DIR/plan/rows.tsv"

wanted() { # wanted LIST ITEM: ITEM is in the comma LIST, or the LIST is "all"/empty
  [[ -z $1 || $1 == all || ",$1," == *",$2,"* ]]
}
declare -A NEEDED=()
while IFS=$'\t' read -r sc row server kind _; do
  wanted "${SCENARIOS:-all}" "$sc" && wanted "$ROWS" "$row" && [[ $kind == url ]] &&
    NEEDED[$server]=1
done <"$OUT_DIR/plan/rows.tsv"

# ---- 3. install and start the servers ---------------------------------------------------------
# A server that cannot be installed or started gets a status line and stays in the tables.
install_or_mark() { # install_or_mark INSTALLER SERVER...
  local installer=$1 s
  shift
  "$installer" && return 0
  for s in "$@"; do echo "install failed (see $LOG_DIR/install-*.log)" >"$STATUS_DIR/$s"; done
  return 1
}
start_if_needed() { # start_if_needed SERVER START_COMMAND...
  local s=$1
  shift
  [[ -n ${NEEDED[$s]:-} && ! -f $STATUS_DIR/$s ]] || return 0
  if ! port_free "${PORT[$s]}"; then
    echo "start failed: port ${PORT[$s]} in use" >"$STATUS_DIR/$s"
    return 0
  fi
  log "starting $s on 127.0.0.1:${PORT[$s]}"
  "$@" || log "$s: $(cat "$STATUS_DIR/$s")"
}
needs() { local s; for s in "$@"; do [[ -n ${NEEDED[$s]:-} ]] && return 0; done; return 1; }

install_or_mark ensure_nginx nginx || true
! needs imgrelay imgrelay-mem imgrelay-disk imgrelay-shared ||
  install_or_mark ensure_imgrelay imgrelay imgrelay-mem imgrelay-disk imgrelay-shared || true
! needs ipx || install_or_mark ensure_ipx ipx || true
! needs thumbor thumbor-mem thumbor-disk ||
  install_or_mark ensure_thumbor thumbor thumbor-mem thumbor-disk || true
! needs oximg || install_or_mark ensure_oximg oximg || true

# imgrelay runs from a copy, so that a rebuild during the run cannot swap binaries mid-way
if [[ -x $IMGRELAY_BIN && ! -f $STATUS_DIR/imgrelay ]]; then
  cp -p "$IMGRELAY_BIN" "$SRV_DIR/imgrelay.bin"
  {
    "$IMGRELAY_BIN" --version
    echo "binary: $IMGRELAY_BIN, built $(date -u -r "$IMGRELAY_BIN" '+%Y-%m-%d %H:%M') UTC"
    echo "sha256 $(sha256sum "$IMGRELAY_BIN" | cut -c1-12)"
    echo "work tree: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
  } >"$OUT_DIR/imgrelay.txt" 2>&1
  IMGRELAY_BIN=$SRV_DIR/imgrelay.bin
fi

port_free "${PORT[origin]}" || die "origin port ${PORT[origin]} is in use (set BASE_PORT)"
start_origin || die "the origin did not start (see $SRV_DIR/origin/log)"
start_if_needed imgrelay start_imgrelay imgrelay 0 0
start_if_needed imgrelay-mem start_imgrelay imgrelay-mem 256MiB 0
start_if_needed imgrelay-disk start_imgrelay imgrelay-disk 0 4GiB
if [[ -n ${NEEDED[imgrelay-shared]:-} ]]; then
  NEEDED[s3]=1
  start_if_needed s3 start_s3
  start_if_needed imgrelay-shared start_imgrelay_shared
fi
start_if_needed ipx start_ipx
start_if_needed thumbor start_thumbor thumbor ""
start_if_needed thumbor-mem start_thumbor thumbor-mem "$SHM_DIR/thumbor"
start_if_needed thumbor-disk start_thumbor thumbor-disk "$SRV_DIR/thumbor-disk/results"
start_if_needed oximg start_oximg
start_if_needed nginx start_nginx

# ---- 4. scenario by scenario: check every URL once, then load each server -------------------
server_ok() { [[ $(cat "$STATUS_DIR/$1" 2>/dev/null) == ok ]]; }

# load_run SCENARIO ROW SERVER PATHS: wrk for $DURATION s while monitor.py watches the server.
# With QUIET set it first waits for a quiet machine; with RETRY_BG set, a run during which other
# work took more than RETRY_BG % of the machine is repeated (twice at most) and the least
# disturbed attempt is kept.
load_run() {
  local sc=$1 row=$2 server=$3 paths=$4 out=$OUT_DIR/load/$1.$2 busy attempt bg best=
  for attempt in 1 2 3; do
    if [[ -n ${QUIET:-} ]]; then
      busy=$("$PY" "$HERE/monitor.py" quiet "$QUIET" "${QUIET_WAIT:-300}")
      ((busy <= QUIET)) || log "  machine still ${busy}% busy after ${QUIET_WAIT:-300} s; running anyway"
    fi
    "$PY" "$HERE/monitor.py" run "$(server_pid "$server")" "$(server_pid origin)" "$out.try.mon.json" -- \
      wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 60s -s "$HERE/wrk.lua" \
      "http://127.0.0.1:${PORT[$server]}" -- "$paths" "$THREADS" >"$out.try.wrk.txt" 2>&1 || true
    bg=$("$PY" -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["bg_cpu_pct"]))' \
      "$out.try.mon.json" 2>/dev/null || echo 100)
    if [[ -z $best ]] || ((bg < best)); then
      best=$bg
      mv "$out.try.mon.json" "$out.mon.json"
      mv "$out.try.wrk.txt" "$out.wrk.txt"
    fi
    if [[ -z ${RETRY_BG:-} ]] || ((best <= RETRY_BG || attempt == 3)); then break; fi
    log "  $row: other work took ${bg}% of the machine during the run; again"
  done
  rm -f "$out.try.mon.json" "$out.try.wrk.txt"
  grep -o '{.*}' <<<"$(grep '^WRKJSON ' "$out.wrk.txt")" >"$out.wrk.json" ||
    log "  $row: wrk gave no summary (see $out.wrk.txt)"
}

while IFS=$'\t' read -r -u 3 sc title; do
  wanted "${SCENARIOS:-all}" "$sc" || continue
  log "scenario: $title"
  rows=()
  while IFS=$'\t' read -r -u 4 s row server kind _; do
    [[ $s == "$sc" && $kind == url ]] && wanted "$ROWS" "$row" && server_ok "$server" &&
      rows+=("$row")
  done 4<"$OUT_DIR/plan/rows.tsv"
  ((${#rows[@]})) || continue
  rows_csv=$(IFS=,; echo "${rows[*]}")
  "$PY" "$HERE/check.py" "$OUT_DIR/plan/$sc.check.json" "$OUT_DIR/check/$sc.json" "$rows_csv" ||
    log "  check failed for $sc"
  while IFS=$'\t' read -r -u 4 s row server kind paths; do
    if ! { [[ $s == "$sc" && $kind == url ]] && wanted "$ROWS" "$row" && server_ok "$server"; }; then
      continue
    fi
    ok=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2],{}).get("ok",0))' \
      "$OUT_DIR/check/$sc.json" "$row" 2>/dev/null || echo 0)
    if ((ok == 0)); then
      log "  $row: no good answer in the check; not loaded"
      continue
    fi
    log "  load $row ($server): ${DURATION}s"
    load_run "$sc" "$row" "$server" "$paths" </dev/null
  done 4<"$OUT_DIR/plan/rows.tsv"
done 3< <("$PY" "$HERE/plan.py" scenarios)

# ---- 5. the tables ----------------------------------------------------------------------------
"$PY" "$HERE/report.py" "$OUT_DIR" "$DURATION" "$CONNECTIONS" "$THREADS" "${SCENARIOS:-all}" "$ROWS" |
  tee "$OUT_DIR/results.md"
log "tables written to $OUT_DIR/results.md"
