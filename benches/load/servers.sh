# shellcheck shell=bash
# Starting and stopping the servers under test, sourced by run.sh.
# Every server runs in its own session (setsid), so its whole process tree is one process group
# that stop_all can signal and verify. Each start_* writes its config under $SRV_DIR/NAME/ and
# returns non-zero when the server does not come up; the reason goes to $STATUS_DIR/NAME.
# Needs from run.sh: ROOT, HERE, PEERS_DIR, SRV_DIR, STATUS_DIR, SHM_DIR, CORPUS_DIR, NPROC, PORT[],
# log().

STARTED=() # names of the servers started, in order

# run_bg NAME CMD...: start CMD detached in a new session, output to $SRV_DIR/NAME/log.
run_bg() {
  local name=$1
  shift
  mkdir -p "$SRV_DIR/$name"
  # without job control a background child is no group leader, so setsid execs in place and $!
  # is the server's own pid, which is then also its process group id
  setsid "$@" >"$SRV_DIR/$name/log" 2>&1 </dev/null 9>&- &
  echo $! >"$SRV_DIR/$name/pid"
  STARTED+=("$name")
}

server_pid() { cat "$SRV_DIR/$1/pid" 2>/dev/null; }

# wait_http NAME PATH: wait up to 60 s until the server answers PATH with any HTTP status.
wait_http() {
  local name=$1 path=$2 pid code i
  pid=$(server_pid "$name")
  for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "start failed: exited (see $SRV_DIR/$name/log)" >"$STATUS_DIR/$name"
      return 1
    fi
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:${PORT[$name]}$path" || true)
    if [[ $code != 000 && -n $code ]]; then
      echo ok >"$STATUS_DIR/$name"
      return 0
    fi
    sleep 0.1
  done
  echo "start failed: no answer in 60 s (see $SRV_DIR/$name/log)" >"$STATUS_DIR/$name"
  return 1
}

port_free() { ! (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_all: SIGTERM every process group started, SIGKILL what is left after 10 s, then verify.
stop_all() {
  local name pid left=() i
  for name in "${STARTED[@]}"; do
    if pid=$(server_pid "$name"); then kill -TERM -- "-$pid" 2>/dev/null || true; fi
  done
  for ((i = 0; i < 100; i++)); do
    left=()
    for name in "${STARTED[@]}"; do
      pid=$(server_pid "$name") || continue
      pgrep -g "$pid" >/dev/null 2>&1 && left+=("$name")
    done
    ((${#left[@]} == 0)) && break
    sleep 0.1
  done
  for name in "${left[@]}"; do
    log "$name did not stop on SIGTERM; killing it"
    kill -KILL -- "-$(server_pid "$name")" 2>/dev/null || true
  done
  sleep 0.2
  left=()
  for name in "${STARTED[@]}"; do
    pid=$(server_pid "$name") || continue
    pgrep -g "$pid" >/dev/null 2>&1 && left+=("$name")
  done
  if ((${#left[@]})); then
    log "ERROR: still running after SIGKILL: ${left[*]}"
    return 1
  fi
  ((${#STARTED[@]} == 0)) || log "stopped ${#STARTED[@]} servers; none left running"
  STARTED=()
}

# ---- the origin: a static file server on the corpus ----------------------------------------

start_origin() {
  local dir=$SRV_DIR/origin
  mkdir -p "$dir"
  if command -v nginx >/dev/null; then
    cat >"$dir/nginx.conf" <<EOF
worker_processes $NPROC;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  types { image/jpeg jpg; image/png png; image/webp webp; }
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  server {
    listen 127.0.0.1:${PORT[origin]};
    root $CORPUS_DIR;
  }
}
EOF
    mkdir -p "$dir/tmp"
    run_bg origin nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
  else
    log "nginx missing: serving the origin with python -m http.server (slower)"
    run_bg origin python3 -m http.server "${PORT[origin]}" --bind 127.0.0.1 -d "$CORPUS_DIR"
  fi
  wait_http origin /
}

# ---- imgrelay -------------------------------------------------------------------------------

# start_imgrelay NAME MEMORY_BYTES DISK_BYTES: one instance with the given cache tiers.
start_imgrelay() {
  local name=$1 mem=$2 disk=$3 dir=$SRV_DIR/$1
  mkdir -p "$dir/cache"
  # -u: imgrelay reads every IMGRELAY_* variable as configuration, and has no key "bin"
  run_bg "$name" env -u IMGRELAY_BIN \
    IMGRELAY_SECURITY__ALLOW_NETWORKS='["127.0.0.0/8"]' \
    IMGRELAY_SECURITY__ALLOWED_PORTS='[]' \
    IMGRELAY_CACHE__MEMORY_BYTES="$mem" \
    IMGRELAY_CACHE__DISK_BYTES="$disk" \
    IMGRELAY_CACHE__DIR="$dir/cache" \
    IMGRELAY_TRANSFORM__WORKERS="$NPROC" \
    "$IMGRELAY_BIN" --config "$ROOT/proxy.toml" --listen "127.0.0.1:${PORT[$name]}" serve
  wait_http "$name" /healthz
}

# ---- the shared tier: s3s-fs and an imgrelay that reads it ---------------------------------

S3_KEY=bench-access-key
S3_SECRET=bench-secret-key-bench-secret-key

# start_s3: s3s-fs (installed by tests/e2e/setup.sh) serving the bucket "bench" from a folder.
start_s3() {
  local dir=$SRV_DIR/s3 bin
  bin=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
  if [[ ! -x $bin ]]; then
    echo "start failed: s3s-fs missing (run tests/e2e/setup.sh)" >"$STATUS_DIR/s3"
    return 1
  fi
  rm -rf "$dir/root"
  mkdir -p "$dir/root/bench"
  run_bg s3 "$bin" --host 127.0.0.1 --port "${PORT[s3]}" \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" "$dir/root"
  wait_http s3 /
}

# start_imgrelay_shared: memory and disk off, [cache.shared] on the s3 server: every hit after
# the check fetch comes from the bucket (X-Cache: HIT-SHARED).
start_imgrelay_shared() {
  local name=imgrelay-shared dir=$SRV_DIR/imgrelay-shared
  if [[ $(cat "$STATUS_DIR/s3" 2>/dev/null) != ok ]]; then
    echo "start failed: no s3 server ($(cat "$STATUS_DIR/s3" 2>/dev/null))" >"$STATUS_DIR/$name"
    return 1
  fi
  mkdir -p "$dir/cache"
  run_bg "$name" env -u IMGRELAY_BIN \
    AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" \
    IMGRELAY_SECURITY__ALLOW_NETWORKS='["127.0.0.0/8"]' \
    IMGRELAY_SECURITY__ALLOWED_PORTS='[]' \
    IMGRELAY_CACHE__MEMORY_BYTES=0 \
    IMGRELAY_CACHE__DISK_BYTES=0 \
    IMGRELAY_CACHE__DIR="$dir/cache" \
    IMGRELAY_CACHE__SHARED__URL=s3://bench/imgrelay \
    IMGRELAY_CACHE__SHARED__ENDPOINT="http://127.0.0.1:${PORT[s3]}" \
    IMGRELAY_CACHE__SHARED__ALLOW_HTTP=true \
    IMGRELAY_CACHE__SHARED__KEY=bench-shared-mac-key-bench-shared-mac-key \
    IMGRELAY_TRANSFORM__WORKERS="$NPROC" \
    "$IMGRELAY_BIN" --config "$ROOT/proxy.toml" --listen "127.0.0.1:${PORT[$name]}" serve
  wait_http "$name" /healthz
}

# ---- ipx --------------------------------------------------------------------------------------

start_ipx() {
  run_bg ipx env IPX_DIR="$PEERS_DIR/ipx" HOST=127.0.0.1 PORT="${PORT[ipx]}" \
    ORIGIN_HOST=127.0.0.1 UV_THREADPOOL_SIZE="$NPROC" NODE_ENV=production \
    node "$HERE/ipx-server.cjs"
  wait_http ipx /
}

# ---- thumbor ----------------------------------------------------------------------------------

# start_thumbor NAME RESULT_DIR: RESULT_DIR empty = no result storage (misses only).
start_thumbor() {
  local name=$1 results=$2 dir=$SRV_DIR/$1 storage=None
  mkdir -p "$dir"
  [[ -n $results ]] && storage="'thumbor.result_storages.file_storage'"
  cat >"$dir/thumbor.conf" <<EOF
# generated by benches/load/servers.sh
ALLOW_UNSAFE_URL = True
LOADER = 'thumbor.loaders.http_loader'
ALLOWED_SOURCES = ['127.0.0.1']
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = $storage
RESULT_STORAGE_STORES_UNSAFE = True
RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = '${results:-$dir/results}'
QUALITY = 80
WEBP_QUALITY = 75
AVIF_QUALITY = 60
RESPECT_ORIENTATION = True
ENGINE_THREADPOOL_SIZE = $NPROC
EOF
  run_bg "$name" "$PEERS_DIR/thumbor-venv/bin/thumbor" --ip 127.0.0.1 --port "${PORT[$name]}" \
    --conf "$dir/thumbor.conf" --processes "$NPROC" --log-level warning
  wait_http "$name" /healthcheck
}

# ---- oximg ------------------------------------------------------------------------------------

start_oximg() {
  run_bg oximg env PORT="${PORT[oximg]}" OXIMG_BIND=127.0.0.1 \
    OXIMG_SOURCE_BASE_URL="http://127.0.0.1:${PORT[origin]}" OXIMG_OPTIONS_PREFIX=/image \
    OXIMG_WORKERS="$NPROC" QUALITY=80 OXIMG_WEBP_QUALITY=75 OXIMG_AVIF_QUALITY=60 \
    "$PEERS_DIR/oximg/bin/oximg" serve
  wait_http oximg /
}

# ---- nginx image_filter -------------------------------------------------------------------
# /fit/  resize through image_filter (miss: the origin's file is fetched and resized each time)
# /pass/ plain proxy_pass to the origin
# /mem/  proxy_cache (on tmpfs) in front of /fit/; /disk/ the same with the cache on disk

start_nginx() {
  local dir=$SRV_DIR/nginx shm=$SHM_DIR/nginx
  mkdir -p "$dir/tmp" "$dir/cache-disk" "$shm"
  local fit="http://127.0.0.1:${PORT[nginx]}/fit/"
  cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_image_filter_module.so;
worker_processes $NPROC;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp;
  uwsgi_temp_path $dir/tmp;
  scgi_temp_path $dir/tmp;
  proxy_cache_path $shm levels=1:2 keys_zone=mem:16m max_size=2g inactive=1d use_temp_path=off;
  proxy_cache_path $dir/cache-disk levels=1:2 keys_zone=disk:16m max_size=2g inactive=1d use_temp_path=off;
  upstream origin { server 127.0.0.1:${PORT[origin]}; keepalive 16; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_buffers 64 64k;
  server {
    listen 127.0.0.1:${PORT[nginx]};
    location /fit/ {
      proxy_pass http://origin/;
      image_filter resize 512 512;
      image_filter_jpeg_quality 80;
      image_filter_webp_quality 75;
      image_filter_buffer 64M;
    }
    location /pass/ { proxy_pass http://origin/; }
    location /mem/ {
      proxy_pass $fit;
      proxy_cache mem;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
    }
    location /disk/ {
      proxy_pass $fit;
      proxy_cache disk;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
    }
  }
}
EOF
  run_bg nginx nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
  wait_http nginx /pass/
}
