#!/bin/sh
# The main job on a fresh Debian 12 machine, as root: install the dependencies, build and
# install cachepot, start cachepotd and cachepot-fs with their default store, socket and mount,
# then build a sample workspace twice through the cache (the second time after `cargo clean`)
# and show the statistics. The daemon and the mount keep running afterwards; stop them with
#   kill $(cat /run/cachepot/cachepotd.pid) && fusermount3 -u /var/cache/cachepot
# Environment: CORPUS (a cargo workspace that builds offline; default ../shared/corpus/small).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
corpus=${CORPUS:-$top/../shared/corpus/small}
store=/var/lib/cachepot
mount=/var/cache/cachepot
socket=/run/cachepot/cachepotd.sock
export PATH="/root/.cargo/bin:/usr/local/bin:/usr/local/sbin:$PATH"

sh contrib/install-deps.sh
./autogen.sh
./configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var
make -j"$(nproc)"
make install

# The daemon: the only writer of the store.
mkdir -p /run/cachepot "$mount"
if ! [ -S "$socket" ] || ! curl -sf --unix-socket "$socket" http://cachepotd/v1/status > /dev/null; then
	nohup cachepotd --store "$store" --socket "$socket" > /var/log/cachepotd.log 2>&1 &
	echo $! > /run/cachepot/cachepotd.pid
	for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
	[ -S "$socket" ] || { tail /var/log/cachepotd.log; echo "demo: cachepotd did not start" >&2; exit 1; }
fi
# The read-only view of the store that build machines read.
if ! mountpoint -q "$mount"; then
	cachepot-fs "$store" "$mount"
fi
echo "demo: cachepotd on $socket, store $store mounted read-only at $mount"

work=$(mktemp -d /tmp/cachepot-demo.XXXXXX)
cp -r "$corpus" "$work/workspace"
cd "$work/workspace"
export RUSTC_WRAPPER=cachepot
cachepot --zero-stats
echo "demo: first build (misses compile in the sandbox)"
start=$(date +%s.%N)
cargo build --offline
cold=$(echo "$(date +%s.%N) - $start" | bc)
cargo clean
echo "demo: second build after cargo clean (hits are file reads from the mount)"
start=$(date +%s.%N)
cargo build --offline
warm=$(echo "$(date +%s.%N) - $start" | bc)
cachepot --show-stats
echo "demo: first build ${cold}s, second build ${warm}s (workspace in $work/workspace)"
