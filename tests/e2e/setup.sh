#!/usr/bin/env bash
# Installs the outside programs the e2e suites (`cargo test --features e2e`) drive (SPEC §1).
# Idempotent: a tool already present is left alone.
#   promtool (Debian `prometheus`): `promtool check metrics` on imgrelay's /metrics.
#   s3s-fs (cargo): the S3-compatible server of tests/e2e_shared, a bucket per directory;
#     0.14.1 is the last release that builds with the machines' toolchain.
#   varnishd (Debian `varnish`, `varnish-modules` for vmod xkey): the shipped VCL.
#   chromium + chromedriver (Debian `chromium`, `chromium-driver`): a reader's browser.
#   cmark (Debian `cmark`): CommonMark's reference renderer, the Markdown rewrite's oracle.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v varnishd >/dev/null 2>&1 || need+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || need+=(varnish-modules)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v cmark >/dev/null 2>&1 || need+=(cmark)

if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; }
fi

S3S_FS_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked
fi

promtool --version >/dev/null
varnishd -V >/dev/null 2>&1
chromedriver --version >/dev/null
cmark --version >/dev/null
