#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, property, golden, RFC 6962 vectors, in-process
# multi-component and real-process tests), the cross-language check of the signing vectors with
# PyNaCl, and the Python client's tests (offline vectors, and against a live `auditchain dev`
# process). Installs what it needs; needs cargo, python3 with pip and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check \
    "pynacl>=1.5" "httpx>=0.25" "pytest>=7" "prometheus_client>=0.17"
cargo test --workspace --locked
python3 docs/check_signing_vectors.py
cargo build --locked -p auditchain-node     # the binary the Python tests run (built by the tests)
# where cargo put it: CARGO_TARGET_DIR if set (relative to the repository root), else target/
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
(cd clients/python && AUDITCHAIN_BIN="$target_dir/debug/auditchain" python3 -m pytest -q tests)
