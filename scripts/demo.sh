#!/usr/bin/env bash
# Set up and run the main job: resolve and lock the distroless python3 image from
# the real Debian archive, explain one package, and fetch and verify its .debs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p build
.venv/bin/distill lock python3 -o build/python3.lock.json
.venv/bin/distill why python3 libssl3t64 --offline
.venv/bin/distill fetch python3 --lock build/python3.lock.json --locked --arch "$(dpkg --print-architecture)"
