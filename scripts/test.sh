#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, property, golden, RFC 6962 vectors, in-process
# multi-component and real-process tests) and the cross-language check of the signing vectors
# with PyNaCl. Installs what it needs; needs cargo, python3 and the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check pynacl
cargo test --workspace --locked
python3 docs/check_signing_vectors.py
