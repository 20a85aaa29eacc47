#!/usr/bin/env bash
# Set up distill on a fresh Debian or Ubuntu machine: system packages (as root,
# or with sudo when available) and a virtual environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gpgv >/dev/null || need+=(gpgv)
command -v gpg >/dev/null || need+=(gpg)
command -v dpkg >/dev/null || need+=(dpkg)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || [ -e /usr/share/keyrings/debian-archive-keyring.pgp ] || need+=(debian-archive-keyring)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
