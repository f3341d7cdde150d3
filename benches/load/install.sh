# shellcheck shell=bash
# Installers for the load harness, sourced by run.sh. Each ensure_* function is idempotent: it
# returns at once when its tool is already there, installs it otherwise (peers go under
# $PEERS_DIR, never into the repository), and returns non-zero when that fails, with the
# details in $LOG_DIR/install-*.log. Installs run at the lowest CPU priority.
# Needs from run.sh: PEERS_DIR, LOG_DIR, ROOT, log().

# Debian packages, installed only when missing; the package lists are refreshed only when an
# install fails without them.
apt_ensure() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) != 0 ]]; then
    log "need root to apt-get install ${missing[*]}"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  local apt=(nice -n 19 env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
  {
    "${apt[@]}" "${missing[@]}" || { apt-get update -qq && "${apt[@]}" "${missing[@]}"; }
  } >>"$LOG_DIR/install-apt.log" 2>&1
}

# A Python venv with the given pip packages; $1 = venv dir, rest = packages.
venv_ensure() {
  local dir=$1 log
  log=$LOG_DIR/install-${1##*/}.log
  shift
  if [[ -x $dir/bin/python ]] && "$dir/bin/python" -c 'import sys' 2>/dev/null &&
    [[ -f $dir/.installed ]]; then
    return 0
  fi
  log "creating $dir ($*)"
  {
    nice -n 19 python3 -m venv "$dir" &&
      nice -n 19 "$dir/bin/pip" install -q "$@" &&
      touch "$dir/.installed"
  } >>"$log" 2>&1
}

# Load generator and the harness's own Python (Pillow with AVIF decoding, numpy).
ensure_tools() {
  command -v wrk >/dev/null || apt_ensure wrk || return 1
  command -v curl >/dev/null || apt_ensure curl || return 1
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_ensure python3-venv || return 1
  venv_ensure "$PEERS_DIR/tools-venv" 'pillow>=11.3' numpy
}

# nginx serves the origin and is the image_filter peer.
ensure_nginx() {
  apt_ensure nginx-light libnginx-mod-http-image-filter &&
    [[ -f /usr/lib/nginx/modules/ngx_http_image_filter_module.so ]]
}

# ipx v3 with sharp (sharp's npm package ships its libvips build).
ensure_ipx() {
  command -v node >/dev/null || apt_ensure nodejs npm || return 1
  [[ -f $PEERS_DIR/ipx/node_modules/ipx/package.json ]] && return 0
  log "npm install ipx@3 (into $PEERS_DIR/ipx)"
  mkdir -p "$PEERS_DIR/ipx"
  (
    cd "$PEERS_DIR/ipx" &&
      { [[ -f package.json ]] || npm init -y >/dev/null; } &&
      nice -n 19 npm install --no-audit --no-fund ipx@3
  ) >>"$LOG_DIR/install-ipx.log" 2>&1
}

ensure_thumbor() {
  venv_ensure "$PEERS_DIR/thumbor-venv" thumbor
}

# oximg builds jpegli and mozjpeg from source: it needs cmake and nasm, and several minutes.
ensure_oximg() {
  [[ -x $PEERS_DIR/oximg/bin/oximg ]] && return 0
  apt_ensure cmake nasm || return 1
  log "cargo install oximg (one job; takes several minutes)"
  nice -n 19 cargo install oximg -j 1 --root "$PEERS_DIR/oximg" >>"$LOG_DIR/install-oximg.log" 2>&1
}

# imgrelay itself: $IMGRELAY_BIN, else target/release/imgrelay, else build it once.
ensure_imgrelay() {
  IMGRELAY_BIN=${IMGRELAY_BIN:-$ROOT/target/release/imgrelay}
  [[ -x $IMGRELAY_BIN ]] && return 0
  log "WARNING: $IMGRELAY_BIN missing; running cargo build --release (takes minutes)"
  (cd "$ROOT" && nice -n 19 cargo build --release) >>"$LOG_DIR/install-imgrelay.log" 2>&1 &&
    [[ -x $IMGRELAY_BIN ]]
}
