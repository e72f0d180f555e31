#!/usr/bin/env bash
# The main job on the bundled default: builds Weir and replays the captures in pcaps/ into
# weir-out/ (eve.json, filestore/, mail/). Extra arguments go to `weir replay`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where cargo puts binaries (CARGO_TARGET_DIR when set).
bin="${CARGO_TARGET_DIR:-target}/release"
scripts/install-deps.sh
cargo build --release --bin weir
exec "$bin/weir" replay pcaps/ --out weir-out --overwrite "$@"
