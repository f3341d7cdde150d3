#!/usr/bin/env bash
# Installs the outside programs the e2e suite (`cargo test --features e2e`) drives. Idempotent:
# a tool already present is left alone. Debian packages only, through apt-get.
#   promtool (Debian `prometheus`): `promtool check metrics` on imgrelay's /metrics.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)

if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; }
fi

promtool --version >/dev/null
