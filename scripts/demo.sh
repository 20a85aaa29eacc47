#!/usr/bin/env bash
# Set up and run the main job: lock the distroless python3 image against the real
# Debian archive, build it (reproducibly, no daemon, no root needed for the build),
# load it into podman and run Python in it; then put a Flask app on it without a
# Dockerfile (examples/python-web) and ask it over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p build/containers
arch="$(dpkg --print-architecture)"
.venv/bin/distill lock python3 -o build/python3.lock.json
.venv/bin/distill why python3 libssl3t64 --offline
.venv/bin/distill build python3 --lock build/python3.lock.json --arch "$arch" -o build/python3.tar
# podman with this repository's settings and its own storage under build/. The run root
# is short: podman's clean-up after `run --rm` refuses one longer than 50 characters.
export CONTAINERS_CONF="$PWD/scripts/containers.conf"
export CONTAINERS_STORAGE_CONF="$PWD/build/containers/storage.conf"
printf '[storage]\ndriver = "vfs"\nrunroot = "/tmp/distill-demo-%s"\ngraphroot = "%s/build/containers/storage"\n' \
  "$(id -u)" "$PWD" > "$CONTAINERS_STORAGE_CONF"
podman load -q -i build/python3.tar
podman run --rm localhost/python3:latest -c '
import ctypes.util, json, platform, sqlite3, ssl, zoneinfo
print("Python", platform.python_version(), "on", platform.machine(), "-", ssl.OPENSSL_VERSION)
print("libssl:", ctypes.util.find_library("ssl"), "| sqlite", sqlite3.sqlite_version,
      "| Tokyo:", zoneinfo.ZoneInfo("Asia/Tokyo"))'
if podman run --rm --entrypoint /bin/sh localhost/python3:latest -c true 2>/dev/null; then
  echo "unexpected: the image has a shell" >&2; exit 1
fi
echo "no shell in the image, as intended"

# An application on the image: wheels for the image's CPython, code in its own layer.
.venv/bin/distill build examples/python-web/app.yaml --arch "$arch" --load --tag python-web:demo
cid="$(podman run -d -p 127.0.0.1:18080:8080 localhost/python-web:demo)"
trap 'podman rm -f -t 0 "$cid" >/dev/null' EXIT
.venv/bin/python - <<'PY'
import time, urllib.request
for _ in range(100):
    try:
        print("GET / ->", urllib.request.urlopen("http://127.0.0.1:18080/", timeout=2).read().decode().strip())
        break
    except OSError:
        time.sleep(0.2)
else:
    raise SystemExit("python-web did not answer")
PY
