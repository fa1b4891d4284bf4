#!/bin/sh
# Listing ac/ and cas/ of a real cachepot-fs mount pages through the store's index instead of
# holding it: a store of 1500 synthetic keys (about 35 pages of readdir) lists every key and
# every published blob exactly once, in order, through ls and through Python's scandir; a key
# published while a listing is open does not break it; the listing of ac/KEY and the root are
# as before. The figure for large stores (time, memory) is in bench/.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "no fusermount3"

tool="$top_builddir/tests/fs/store-tool"
fsbin="$top_builddir/cachepot-fs"
daemon_setup
trap daemon_cleanup EXIT
export CACHEPOT_TRUST="$STORE/key/ed25519.pub"
tap_plan 6

n=1500
"$tool" synth "$STORE" $n 16 > "$T/keys" || bail "store-tool synth"
sort "$T/keys" > "$T/keys.sorted"
MNT=$T/mnt
mkdir "$MNT"
"$fsbin" "$STORE" "$MNT" -f </dev/null >/dev/null 2>>"$T/fs.log" &
MOUNT_PIDS=$!
MOUNTS=$MNT
for _ in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || bail "cachepot-fs did not mount"

ls -f "$MNT/ac" | grep -v '^\.\.\?$' > "$T/ls.ac"
check "ls lists each of the $n keys once, in key order ($(wc -l < "$T/ls.ac") names)" \
	cmp -s "$T/ls.ac" "$T/keys.sorted"
python3 -c 'import os, sys
names = [e.name for e in os.scandir(sys.argv[1])]
print("\n".join(names))' "$MNT/ac" > "$T/py.ac"
check "scandir lists the same" cmp -s "$T/py.ac" "$T/keys.sorted"
# every published blob: the n outputs (16 bytes each, distinct) and the empty stdout/stderr
ls -f "$MNT/cas" | grep -v '^\.\.\?$' > "$T/ls.cas"
check "cas/ lists each published blob once, in order ($(wc -l < "$T/ls.cas") of $((n + 1)))" \
	eval '[ "$(wc -l < "$T/ls.cas")" = $((n + 1)) ] && sort -c "$T/ls.cas" && [ -z "$(uniq -d "$T/ls.cas")" ]'
# A listing read slowly while keys are published: every name it gives is a key, none twice, and
# every key there before it began is in it.
python3 -c 'import os, sys, time
it = os.scandir(sys.argv[1])
out = []
for i, e in enumerate(it):
    out.append(e.name)
    if i == 100:
        open(sys.argv[2], "w").write("go")
        for _ in range(100):
            if os.path.exists(sys.argv[3]): break
            time.sleep(0.1)
print("\n".join(out))' "$MNT/ac" "$T/go" "$T/published" > "$T/slow.ac" &
lister=$!
for _ in $(seq 1 100); do [ -f "$T/go" ] && break; sleep 0.1; done
"$tool" synth "$STORE" 20 16 100000 > "$T/new" 2>/dev/null && : > "$T/published"
wait $lister
check "a listing open while 20 keys are published: no name twice, every earlier key in it" \
	eval '[ -z "$(sort "$T/slow.ac" | uniq -d)" ] && [ -z "$(comm -23 "$T/keys.sorted" "$(sort "$T/slow.ac" > "$T/slow.sorted"; echo "$T/slow.sorted")")" ] &&
	      [ -z "$(comm -13 "$(sort "$T/keys" "$T/new" > "$T/all.sorted"; echo "$T/all.sorted")" "$T/slow.sorted")" ]'
key=$(head -n 1 "$T/keys")
check "ac/KEY lists .manifest and its output" test "$(ls -A "$MNT/ac/$key" | tr '\n' ' ')" = ".manifest out "
check "the root lists ac, cas, pk" test "$(ls -A "$MNT" | tr '\n' ' ')" = "ac cas pk "
