#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite: lint, types, tests.
# The tests read the real Debian archive from the host's apt sources (or
# DISTILL_MIRROR) and serve generated, signed repositories on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
# pytest exits 5 when it collects no test: that must fail, and it does (set -e).
# Whole files per worker: the image tests share one podman storage and one set of builds.
.venv/bin/pytest -n 2 --dist loadfile "$@"
