#!/bin/sh
# Record every rustc invocation of a debug and a release cargo build of the shared corpus into
# tests/data/invocations-{debug,release}.jsonl (one JSON object a line: cwd, argv, env).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
corpus=${1:-$here/../../../shared/corpus/small}
work=$(mktemp -d /tmp/cachepot-record.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus" "$work/small"
for profile in debug release; do
	out="$here/invocations-$profile.jsonl"
	: > "$out"
	flag=""; [ "$profile" = release ] && flag=--release
	(cd "$work/small" && CACHEPOT_RECORD="$out" RUSTC_WRAPPER="$here/record-wrapper.py" \
		cargo build --offline -v $flag > /dev/null 2>&1)
	echo "$profile: $(wc -l < "$out") invocations"
done
