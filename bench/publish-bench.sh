#!/bin/sh
# Publish throughput of the store's durable path (issue 17: "publishing many small jobs batches
# its syncs", and liburing measured against the plain path). bench/publish-bench publishes small
# jobs (BLOBS blobs of BYTES bytes each: outputs, stdout, stderr; then the synced manifest write)
# from one publisher and from THREADS at once, each way of committing a job's blobs alternately
# on a fresh store: every blob alone (single), a job's blobs together with the fsyncs one after
# the other (batch-plain), and together with the fsyncs submitted at once (batch: io_uring when
# the build has liburing). Then bench/read-bench reads and hashes a set of files, warm and cold,
# with read(2) and with io_uring (the reads of materialise and collect).
#
#   bench/publish-bench.sh [BUILD_DIR] [ROUNDS] [THREADS]     defaults: . 7 4
#
# The stores live under $TMPDIR (default /var/tmp), which must be a disk: on a tmpfs fsync costs
# nothing and the figures mean nothing. Build without --enable-sanitizers; both programs are
# check programs (make bench/publish-bench bench/read-bench). The machine's other load moves
# every fsync's cost, so compare the modes of one run, not figures of different runs.
set -eu
build=${1:-.}
rounds=${2:-7}
threads=${3:-4}
pb=$build/bench/publish-bench
rb=$build/bench/read-bench
for p in "$pb" "$rb"; do
	[ -x "$p" ] || { echo "publish-bench: no $p (make ${p#$build/})" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/var/tmp}/cachepot-publish-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
fs=$(stat -f -c %T "$work")
echo "publish-bench: stores on $fs ($work), load $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$fs" = tmpfs ] && echo "publish-bench: warning: a tmpfs: fsync is free here" >&2

"$pb" "$work/1" --threads 1 --jobs 30 --blobs 5 --bytes 2048 --rounds "$rounds"
"$pb" "$work/n" --threads "$threads" --jobs 15 --blobs 5 --bytes 2048 --rounds "$rounds"
"$rb" "$work/read" --files 200 --bytes 16384 --rounds "$rounds"
echo "publish-bench: load after $(cut -d' ' -f1-3 /proc/loadavg)"
