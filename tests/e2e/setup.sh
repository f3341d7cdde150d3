#!/usr/bin/env bash
# Installs the outside programs that the `e2e` test targets need (SPEC §1); idempotent, so CI
# and developers run it before `cargo test --features e2e`. Each step skips what is present.
set -euo pipefail

# tests/e2e_shared: an S3-compatible server whose bucket is a directory. 0.14.1 is the last
# release that builds with the toolchain the machines have.
S3S_FS_VERSION=0.14.1
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked
fi
