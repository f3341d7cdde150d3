#!/usr/bin/env bash
# Installs the outside programs the e2e suite (`cargo test --features e2e`) drives. Idempotent:
# a tool already present is left alone. Debian packages only, through apt-get.
#   promtool (Debian `prometheus`): `promtool check metrics` on imgrelay's /metrics.
#   varnishd (Debian `varnish`, `varnish-modules` for vmod xkey and accept): the shipped VCL.
#   chromium + chromedriver (Debian `chromium`, `chromium-driver`): a reader's browser.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v varnishd >/dev/null 2>&1 || need+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || need+=(varnish-modules)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; }
fi

promtool --version >/dev/null
varnishd -V >/dev/null 2>&1
chromedriver --version >/dev/null
