#!/bin/sh
# The main job on a fresh Debian 12 machine, as root: install dependencies, build and install
# cachepot. Later stages (daemon, mount, a cargo build through the cache) are added as they land.
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
./autogen.sh
./configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var
make -j"$(nproc)"
make install
echo "demo: cachepot built and installed"
