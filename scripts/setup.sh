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
# Running and inspecting the images: podman (daemonless), its runtime, skopeo and
# umoci (strict OCI readers), qemu for other architectures, openssl for test certificates,
# ip for the network namespace a port-mapping test makes.
for tool in podman:podman runc:runc skopeo:skopeo umoci:umoci qemu-aarch64-static:qemu-user-static \
            update-binfmts:binfmt-support openssl:openssl ip:iproute2; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
# The examples' toolchains: a C compiler with static glibc, a JDK, npm (for the
# registry it is configured with; distill installs node_modules itself).
command -v gcc >/dev/null || need+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v npm >/dev/null || need+=(npm)
# The audit's tests: conventional images built with mmdebstrap, a real registry
# server (Debian's docker-registry) and htpasswd for its basic-auth users.
# The fleet report's test opens its HTML page in a headless browser (Debian's chromium).
for tool in mmdebstrap:mmdebstrap docker-registry:docker-registry htpasswd:apache2-utils chromium:chromium; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Let the kernel run arm64 binaries through qemu (podman run --arch arm64).
if [ "$(uname -m)" != aarch64 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  [ -e /proc/sys/fs/binfmt_misc/register ] || $sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  $sudo update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || echo "setup: could not enable qemu-aarch64 binfmt" >&2
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
