#!/bin/sh
# Credentials in the environment never enter a job: with CARGO_REGISTRY_TOKEN, a
# CARGO_REGISTRIES_<name>_TOKEN, CARGO_HTTP_PROXY with a password and the *_proxy variables set,
# the key is the one without them and cachepot --explain (which prints every field of the job,
# and with --dump every field hashed) shows none of their values; a crate that reads one
# (option_env!) is not cacheable, and its value is not shown either.
. "$top_srcdir/tests/tap.sh"
set -u
tap_plan 6
rustc=$(find_rustc) || skip_all "no rustc"
cachepot="$top_builddir/cachepot"
T=$(mktemp -d /tmp/cachepot-secrets.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export CACHEPOT_CONFIG=/dev/null CACHEPOT_CACHE_DIR="$T/cache"
unset CARGO_HOME OUT_DIR

ws="$T/ws"
mkdir -p "$ws/target/debug/deps"
touch "$ws/target/CACHEDIR.TAG"
echo 'pub fn f() -> u32 { 1 }' > "$ws/lib.rs"
echo 'pub fn f() -> Option<&'"'"'static str> { option_env!("CARGO_REGISTRY_TOKEN") }' > "$ws/reads.rs"
# explain SRC OUT [VAR=VALUE...]: --explain --dump of compiling SRC, the JSON in OUT (the hashed
# fields after it); prints the key ("" when not cacheable).
explain() {
	src=$1 out=$2; shift 2
	(cd "$ws" && timeout 120 env "$@" "$cachepot" --explain --dump "$rustc" --crate-name t --edition 2021 \
		"$src" --crate-type lib --emit=dep-info,metadata,link --out-dir target/debug/deps) > "$out" 2>&1
	python3 -c 'import json,sys; j=json.JSONDecoder().raw_decode(open(sys.argv[1]).read())[0]; print(j["key"] or "")' "$out"
}
set -- CARGO_REGISTRY_TOKEN=cpsecret-registry-token \
	CARGO_REGISTRIES_PRIVATE_TOKEN=cpsecret-private-registry \
	CARGO_HTTP_PROXY=http://user:cpsecret-http-proxy@proxy.example:3128 \
	HTTPS_PROXY=http://user:cpsecret-https-proxy@proxy.example:3128 \
	https_proxy=http://user:cpsecret-lower-proxy@proxy.example:3128 \
	CARGO_REGISTRY_CREDENTIAL_PROVIDER=cpsecret-provider GITHUB_TOKEN=cpsecret-github

k0=$(explain lib.rs "$T/plain")
check "a cacheable key without credentials set" test -n "$k0"
k=$(explain lib.rs "$T/with" "$@")
check "the same key with them set" test "$k" = "$k0"
check "no credential is in the job --explain prints, nor in the fields it hashes" \
	sh -c "! grep -n cpsecret '$T/with'"
grep -n cpsecret "$T/with" | sed 's/^/# /'

k=$(explain reads.rs "$T/reads" "$@")
check "a crate that reads CARGO_REGISTRY_TOKEN is not cacheable" test -z "$k"
check "... for a reason naming the variable" grep -q '"detail": ".*CARGO_REGISTRY_TOKEN' "$T/reads"
check "... and its value is not shown" sh -c "! grep -n cpsecret '$T/reads'"
