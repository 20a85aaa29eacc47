#!/bin/sh
# Build build/hello.jar with the host's JDK (17 or newer); the image runs it on
# Debian's JRE (21 on Debian 13, 17 on Debian 12).
set -eu
cd "$(dirname "$0")"
rm -rf build
mkdir -p build/classes
javac --release 17 -d build/classes src/web/Hello.java
cp resources/* build/classes/
jar --create --file build/hello.jar --main-class web.Hello -C build/classes .
echo "built $(pwd)/build/hello.jar"
