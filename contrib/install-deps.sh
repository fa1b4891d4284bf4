#!/bin/sh
# Install every Debian 12 package that cachepot's build, tests and benchmarks need.
# Idempotent: packages already present are left alone. Run as root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
corpus_packages="$here/../../shared/corpus/small.packages"

packages="
  build-essential autoconf automake libtool pkgconf make
  libssl-dev libfuse3-dev fuse3 librocksdb-dev libarchive-dev
  libcurl4-openssl-dev libevent-dev libjansson-dev libseccomp-dev check
  bubblewrap clang sccache python3 curl ca-certificates jq util-linux
  gcc libc6-dev liblzma-dev rsync bc nginx
"
# Optional for the build (configure uses it when present): liburing, through which the store
# submits the fsyncs of a job's blobs together (bench/README.md, bench/publish-bench.sh).
packages="$packages liburing-dev"
# Optional, for the kvm sandbox backend only (cachepotd --sandbox kvm; its tests skip without
# them): QEMU's microvm, mke2fs for the toolchain images. contrib/kvm-guest.sh then fetches
# Debian's kernel package for the guest (apt-get download: the host kernel is not touched).
packages="$packages qemu-system-x86 e2fsprogs"
# The crates of the test corpus, packaged by Debian (cargo builds them offline).
if [ -r "$corpus_packages" ]; then
	packages="$packages $(cat "$corpus_packages")"
fi

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

# rustc and cargo: the machine's rustup toolchain if present, else Debian's.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x /root/.cargo/bin/cargo ]; then
	apt-get install -y -q --no-install-recommends rustc cargo
fi
echo "install-deps: all dependencies present"
