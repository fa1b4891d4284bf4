#!/bin/sh
# Direct mode for every machine: cachepotd publishes, with each result, the pre-key list of the
# job it ran (hash/prekey.h, fs/prekey_list.h), and a client that never built the workspace
# finds every hit through the mount's pk/ without rustc's dep-info pass.
#
# A workspace of three crates (a lib with a module file, a lib on top of it, a binary) written
# here, not the corpus: three units keep the cold build to a few sandboxes, and each case below
# is one more cheap build (the whole test takes about as long as one corpus build of textkit).
# Client A builds it cold through the cache; client B, with an empty cache directory and a copy
# at another path without target/, builds it warm: every unit hits through a published list,
# outputs byte-identical to A's. Then what a list must never do, each checked end to end: a
# file changed after the list was made gives a miss and a correct compile (the binary prints
# the new value); a source that gains a module (another set of files under the same pre-key)
# gives a miss, then a second list, and both checkouts find their own results through the list
# that applies to them; a variable the published job read while unset (option_env!, which the
# daemon learns from the dep-info its sandbox wrote) is set here, and that list is not used.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
[ "$(id -u)" = 0 ] || skip_all "needs root (FUSE mount, sandbox cgroups)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v cc > /dev/null || skip_all "no cc"
command -v curl > /dev/null || skip_all "no curl"
tap_plan 20

T=$(mktemp -d /tmp/cachepot-direct.XXXXXX)
chmod 755 "$T"
daemon_pid="" fs_pid=""
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	fusermount3 -u "$T/mnt" 2>/dev/null || umount -l "$T/mnt" 2>/dev/null
	[ -n "$fs_pid" ] && kill "$fs_pid" 2>/dev/null
	kill "$watchdog" 2> /dev/null
	[ -n "${CACHEPOT_TEST_KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "Bail out! interrupted (the watchdog, or a signal)"; exit 1' INT TERM HUP
( sleep 900; kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
watchdog=$!

unset LIBRARY_PATH COMPILER_PATH GCC_EXEC_PREFIX
export CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
export CACHEPOT_SOCKET="$T/cachepotd.sock" CACHEPOT_MOUNT="$T/mnt" CACHEPOT_CONFIG=/dev/null
export RUSTC_WRAPPER="$top_builddir/cachepot"
export CACHEPOT_TRUST="$T/store/key/ed25519.pub"
mkdir -p "$T/mnt"

"$top_builddir/cachepotd" --store "$T/store" --socket "$CACHEPOT_SOCKET" --jobs 2 >> "$T/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$CACHEPOT_SOCKET" ] && break; sleep 0.1; done
[ -S "$CACHEPOT_SOCKET" ] || bail "cachepotd did not start: $(tail -n 5 "$T/daemon.log")"
"$top_builddir/cachepot-fs" "$T/store" "$T/mnt" -f > "$T/fs.log" 2>&1 &
fs_pid=$!
for _ in $(seq 100); do [ -d "$T/mnt/ac" ] && break; sleep 0.1; done
[ -d "$T/mnt/ac" ] || bail "cachepot-fs did not mount: $(tail -n 5 "$T/fs.log")"

# The workspace.
W="$T/w0"
mkdir -p "$W/base/src" "$W/mid/src" "$W/app/src"
cat > "$W/Cargo.toml" << 'EOF'
[workspace]
resolver = "2"
members = ["base", "mid", "app"]
EOF
for c in base mid app; do
	printf '[package]\nname = "dp-%s"\nversion = "0.1.0"\nedition = "2021"\n' "$c" > "$W/$c/Cargo.toml"
done
printf '\n[dependencies]\ndp-base = { path = "../base" }\n' >> "$W/mid/Cargo.toml"
printf '\n[dependencies]\ndp-mid = { path = "../mid" }\n' >> "$W/app/Cargo.toml"
flavour='pub fn flavour() -> &'"'"'static str { option_env!("DP_FLAVOUR").unwrap_or("plain") }'
printf 'mod m;\npub fn value() -> u32 { m::V }\n%s\n' "$flavour" > "$W/base/src/lib.rs"
printf 'pub const V: u32 = 1;\n' > "$W/base/src/m.rs"
printf 'pub fn twice() -> u32 { 2 * dp_base::value() }\npub fn flavour() -> &'"'"'static str { dp_base::flavour() }\n' > "$W/mid/src/lib.rs"
printf 'fn main() { println!("{} {}", dp_mid::twice(), dp_mid::flavour()); }\n' > "$W/app/src/main.rs"

# build CLIENT DIR LOG: a cargo build of DIR by CLIENT (its own cache directory, its own log),
# its statistics in $T/CLIENT.json.
build() {
	c=$1 dir=$2 log=$3
	CACHEPOT_CACHE_DIR="$T/cache-$c" CACHEPOT_LOG="$T/$c.wrapper.log" "$top_builddir/cachepot" --zero-stats > /dev/null
	(cd "$dir" && CACHEPOT_CACHE_DIR="$T/cache-$c" CACHEPOT_LOG="$T/$c.wrapper.log" cargo build --offline) > "$log" 2>&1
	r=$?
	CACHEPOT_CACHE_DIR="$T/cache-$c" "$top_builddir/cachepot" --show-stats --json > "$T/$c.json"
	return $r
}
stat_of() { python3 -c "import json; print(json.load(open('$T/$1.json'))['$2'])"; }
# copy NAME: the workspace at another path, without target/.
copy() { mkdir -p "$T/$1/deeper" && cp -r "$W" "$T/$1/deeper/w" && rm -rf "$T/$1/deeper/w/target"; echo "$T/$1/deeper/w"; }
sums() { (cd "$1/target/debug/deps" && find . -type f \( -name '*.rlib' -o -name '*.rmeta' -o -name 'dp_app-*' \) ! -name '*.d' | sort | xargs sha256sum); }
diag() { tail -n 15 "$1" | sed 's/^/# /'; tail -n 5 "$T/daemon.log" | sed 's/^/# daemon: /'; }

# --- client A: cold ---
if build a "$W" "$T/a-cold.log"; then ok "client A: cold build"; else not_ok "client A: cold build"; diag "$T/a-cold.log"; fi
units=$(stat_of a misses)
check "client A: the 3 units compiled in the sandbox ($units misses, $(stat_of a fallbacks) fallbacks)" \
	test "$units" -eq 3 -a "$(stat_of a fallbacks)" -eq 0
sums "$W" > "$T/sums-a"
check "the mount shows a pk/ directory" test -d "$T/mnt/pk"

# --- client B: fresh cache directory, another path, warm ---
B=$(copy b)
if build b "$B" "$T/b-warm.log"; then ok "client B: warm build, empty cache directory, another path"
else not_ok "client B: warm build, empty cache directory, another path"; diag "$T/b-warm.log"; fi
h=$(stat_of b hits) dh=$(stat_of b direct_hits) ph=$(stat_of b published_list_hits)
check "client B: every unit hits without the dep-info pass, through a published list ($h hits, $dh direct, $ph published, $(stat_of b misses) misses)" \
	test "$h" -eq "$units" -a "$dh" -eq "$units" -a "$ph" -eq "$units" -a "$(stat_of b misses)" -eq 0
check "client B: its log says so for each hit" test "$(grep -c ' hit .*direct, published list' "$T/b.wrapper.log")" -eq "$units"
sums "$B" > "$T/sums-b"
check "client B: outputs byte-identical to client A's ($(wc -l < "$T/sums-a") files)" \
	sh -c "test -s '$T/sums-a' && cmp -s '$T/sums-a' '$T/sums-b'"
check "client B: the binary prints 2 plain" test "$("$B/target/debug/dp-app")" = "2 plain"
(cd "$B" && cargo clean -q)
build b "$B" "$T/b-again.log"
check "client B again after cargo clean: the lists it kept serve (direct $(stat_of b direct_hits), published $(stat_of b published_list_hits))" \
	test "$(stat_of b direct_hits)" -eq "$units" -a "$(stat_of b published_list_hits)" -eq 0

# --- the same lists over HTTP: they change, so not immutable ---
pk=$(ls "$T/cache-b/direct" | sed -n 's/^\([0-9a-f]\{64\}\)\.json$/\1/p' | head -n 1)
hdr=$(curl -s --max-time 10 --unix-socket "$CACHEPOT_SOCKET" -D - -o "$T/pk.json" "http://d/v1/prekeys/$pk" | tr -d '\r')
etag=$(echo "$hdr" | awk 'tolower($1) == "etag:" { print $2 }')
status=$(echo "$hdr" | awk 'NR == 1 { print $2 }')
cc=$(echo "$hdr" | sed -n 's/^[Cc]ache-[Cc]ontrol: //p')
want="\"$(sha256sum < "$T/pk.json" | cut -d' ' -f1)\""
http_ok() { [ "$status" = 200 ] && [ "$cc" = "public, no-cache" ] && [ "$etag" = "$want" ] && cmp -s "$T/pk.json" "$T/mnt/pk/$pk"; }
check "GET /v1/prekeys/<pre-key>: $status, Cache-Control: $cc, ETag the SHA-256 of the text, the bytes the mount shows" http_ok
code=$(curl -s --max-time 10 --unix-socket "$CACHEPOT_SOCKET" -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "http://d/v1/prekeys/$pk")
nostore=$(curl -s --max-time 10 --unix-socket "$CACHEPOT_SOCKET" -D - -o /dev/null "http://d/v1/prekeys/$(echo "$pk" | tr 0-9a-f 1-9a-f0)" | tr -d '\r' | grep -ci '^cache-control: no-store$')
check "... 304 for its ETag ($code); a pre-key with no list: 404 with no-store ($nostore)" test "$code" = 304 -a "$nostore" = 1

# --- a file changed after the list was made ---
C=$(copy c)
printf 'pub const V: u32 = 5;\n' > "$C/base/src/m.rs"
build c "$C" "$T/c.log"; r=$?
check "client C, m.rs changed: the build succeeds ($r) and the binary prints the new value" \
	sh -c "test $r -eq 0 && test \"\$('$C/target/debug/dp-app')\" = '10 plain'"
check "client C: nothing of the old result was served (hits $(stat_of c hits), misses $(stat_of c misses))" \
	test "$(stat_of c hits)" -eq 0 -a "$(stat_of c misses)" -eq "$units"

# --- a source that gains a module: another set of files under the same pre-key ---
D=$(copy d)
printf 'mod m;\nmod extra;\npub fn value() -> u32 { m::V + extra::E }\n%s\n' "$flavour" > "$D/base/src/lib.rs"
printf 'pub const E: u32 = 100;\n' > "$D/base/src/extra.rs"
build d "$D" "$T/d.log"; r=$?
check "client D, a new module: the build succeeds ($r), misses ($(stat_of d misses)), prints 202 plain" \
	sh -c "test $r -eq 0 && test $(stat_of d misses) -eq $units && test \"\$('$D/target/debug/dp-app')\" = '202 plain'"
E=$(copy e)
cp "$D/base/src/lib.rs" "$D/base/src/extra.rs" "$E/base/src/"
build e "$E" "$T/e.log"; r=$?
check "client E, fresh, with the new module: every unit hits through a published list ($(stat_of e published_list_hits) of $units), prints 202 plain" \
	sh -c "test $r -eq 0 && test $(stat_of e published_list_hits) -eq $units && test \"\$('$E/target/debug/dp-app')\" = '202 plain'"
F=$(copy f)
build f "$F" "$T/f.log"; r=$?
check "client F, fresh, the original sources: the older list applies, every unit hits ($(stat_of f published_list_hits) of $units), prints 2 plain" \
	sh -c "test $r -eq 0 && test $(stat_of f published_list_hits) -eq $units && test \"\$('$F/target/debug/dp-app')\" = '2 plain'"
sums "$F" > "$T/sums-f"
check "client F: outputs byte-identical to client A's" cmp -s "$T/sums-a" "$T/sums-f"

# --- a variable the job read unset is set here: the list does not apply ---
G=$(copy g)
export DP_FLAVOUR=spicy
build g "$G" "$T/g.log"; r=$?
unset DP_FLAVOUR
check "client G, DP_FLAVOUR set (read unset by the published job): builds ($r), prints 2 spicy" \
	sh -c "test $r -eq 0 && test \"\$('$G/target/debug/dp-app')\" = '2 spicy'"
check "client G: dp_base was not served from the list its sandbox marked (hits: $(grep -c ' hit ' "$T/g.wrapper.log"), dp_base hits: $(grep -c ' hit [0-9a-f]* dp_base ' "$T/g.wrapper.log"))" \
	test "$(grep -c ' hit [0-9a-f]* dp_base ' "$T/g.wrapper.log")" -eq 0 -a "$(grep -c ' miss [0-9a-f]* dp_base ' "$T/g.wrapper.log")" -eq 1
check "no fallback anywhere ($(cat "$T"/?.json | grep -h '"fallbacks"' | tr -d ' ,\n'))" \
	sh -c "! grep -h '\"fallbacks\"' '$T'/?.json | grep -qv ': 0'"
