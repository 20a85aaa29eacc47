#!/bin/sh
# Build ./server as a static binary with the host's C compiler.
set -eu
cd "$(dirname "$0")"
${CC:-gcc} -O2 -static -o server server.c
echo "built $(pwd)/server"
