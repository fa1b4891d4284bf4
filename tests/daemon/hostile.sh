#!/bin/sh
# Hostile requests against a real cachepotd (DESIGN.md, trust model 2, 3 and 6): each is refused
# with a clear status, the daemon keeps serving, and the store is unchanged after it.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (setpriv, sandbox)"
command -v jq >/dev/null || skip_all "needs jq"

tap_plan 57
daemon_setup
toolchain_install || bail "no toolchain tree"
daemon_start --jobs 2 --max-upload-bytes 64M || bail "cachepotd did not start"

# One snapshot of the store, taken after the valid job's blob is uploaded and before the first
# hostile request; `unchanged NAME` compares the store with it after every case (a change made by
# any case shows in every later comparison) and nothing is published, ever.
snap() { store_snapshot > "$T/snap.before"; PUB_BEFORE=$(metric jobs_published_total); }
unchanged() {
	store_snapshot > "$T/snap.after"
	if cmp -s "$T/snap.before" "$T/snap.after" && [ "$(metric jobs_published_total)" = "$PUB_BEFORE" ]; then
		ok "$1: store unchanged"
	else
		not_ok "$1: store unchanged"; diff "$T/snap.before" "$T/snap.after" | head -5 | sed 's/^/# /'
	fi
}

# A valid job to mutate: cfg-if's lib.rs as its one input.
src=$REGISTRY/cfg-if-1.0.0/src/lib.rs
SRC_SHA=$(put_blob "$src") || bail "blob upload"
echo "/cachepot/registry/cfg-if-1.0.0/src/lib.rs $SRC_SHA" > "$T/inputs"
lib_argv cfg_if 2018 /cachepot/registry/cfg-if-1.0.0/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
job_json "$(cat "$T/argv")" '[]' /cachepot/registry/cfg-if-1.0.0 "$T/inputs" > "$T/job.json"
GOOD_KEY=$("$HELPER" key < "$T/job.json")
snap

# 1. wrong expected key
mm=$(metric jobs_key_mismatch_total)
jq '. + {expected_key: "0000000000000000000000000000000000000000000000000000000000000000"}' "$T/job.json" > "$T/bad.json"
check "wrong expected key: 409" [ "$(api POST /v1/jobs --data-binary "@$T/bad.json")" = 409 ]
check "... the answer names the recomputed key" jqe ".key == \"$GOOD_KEY\"" "$T/body"
check "... the key-mismatch metric moved" [ "$(metric jobs_key_mismatch_total)" = $((mm + 1)) ]
check "... nothing runs" [ "$(metric sandbox_runs_total)" = 0 ]
unchanged "wrong key"

# 2. a blob whose bytes do not match its name
printf 'not the bytes you named' > "$T/liar"
check "blob bytes not matching the name: 400" [ "$(api PUT "/v1/blobs/$SRC_SHA" --data-binary "@$T/liar")" = 400 ]
check "... counted" [ "$(metric blobs_rejected_total)" = 1 ]
unchanged "lying blob"
check "a malformed blob name: 400" [ "$(api PUT /v1/blobs/../../etc/passwd --data-binary "@$T/liar" --path-as-is)" = 400 ]

# 3. toolchain archives: wrong id, "..", absolute, symlink, hard link, device
mkdir -p "$T/tc/rust/bin" "$T/tc/usr/lib"
cp "$src" "$T/tc/rust/bin/rustc"
tar -C "$T/tc" -cf "$T/tc-ok.tar" rust usr
tar_case() {  # tar_case NAME TARFILE
	code=$(api PUT /v1/toolchains/1111111111111111111111111111111111111111111111111111111111111111 \
		--data-binary "@$2")
	if [ "$code" = 400 ]; then ok "toolchain archive $1: 400 ($(jq -r .error "$T/body" | cut -c1-70))"
	else not_ok "toolchain archive $1: 400 (got $code)"; fi
	unchanged "toolchain archive $1"
	check "... no trace in toolchains/" [ -z "$(ls -A "$STORE/toolchains" | grep -v "^$TC\$")" ]
}
tar_case "with a wrong id" "$T/tc-ok.tar"
tar -C "$T/tc" --transform 's,^,../,' -cf "$T/dotdot.tar" rust
tar_case "with ../ names" "$T/dotdot.tar"
mkdir -p "$T/abs"; cp "$src" "$T/abs/f"
tar -P -cf "$T/abs.tar" "$T/abs/f"
tar_case "with an absolute name" "$T/abs.tar"
ln -s /etc/shadow "$T/tc/usr/lib/evil"
tar -C "$T/tc" -cf "$T/symlink.tar" rust usr
rm "$T/tc/usr/lib/evil"
tar_case "with a symlink" "$T/symlink.tar"
mknod "$T/tc/usr/lib/null" c 1 3
tar -C "$T/tc" -cf "$T/device.tar" rust usr
rm "$T/tc/usr/lib/null"
tar_case "with a device node" "$T/device.tar"
ln "$T/tc/rust/bin/rustc" "$T/tc/usr/lib/hard"
tar -C "$T/tc" -cf "$T/hardlink.tar" rust usr
tar_case "with a hard link" "$T/hardlink.tar"
head -c 3000 "$T/tc-ok.tar" > "$T/truncated.tar"
tar_case "truncated" "$T/truncated.tar"

# 4. input names outside the tree
for bad in /cachepot/../etc/passwd /etc/passwd /cachepot/out/x /cachepot/a//b; do
	jq --arg p "$bad" '.inputs[0].path = $p' "$T/job.json" > "$T/bad.json"
	jq --arg k "$GOOD_KEY" '. + {expected_key: $k}' "$T/bad.json" > "$T/bad2.json"
	code=$(api POST /v1/jobs --data-binary "@$T/bad2.json")
	check "input path $bad: 400 ($(jq -r .error "$T/body" | cut -c1-60))" [ "$code" = 400 ]
	unchanged "input path $bad"
done

# 5. a 10 GiB claimed upload: refused from the header, nothing allocated. curl asks for "100
# Continue" and sends nothing until the daemon answers, so the 413 (decided from the header
# alone) is what it gets: no answer at all (curl's 000) is a failure here, not a refusal.
rss0=$(awk '/VmRSS/ { print $2 }' /proc/$DAEMON_PID/status)
code=$(api PUT "/v1/blobs/$SRC_SHA" -H 'Content-Length: 10737418240' -H 'Expect: 100-continue' \
	--data-binary "@$T/liar" --max-time 10)
check "10 GiB claimed upload refused from its header: 413 (got $code)" [ "$code" = 413 ]
rss1=$(awk '/VmRSS/ { print $2 }' /proc/$DAEMON_PID/status)
check "... without allocating it (RSS $rss0 -> $rss1 kB)" [ $((rss1 - rss0)) -lt 65536 ]
unchanged "10 GiB claim"

# 6. a truncated body: the client says 100000 bytes, sends 23 and goes away. This one is meant
# to end without an answer (the daemon waits for the rest; curl gives up: 000), so what is
# checked is that the daemon is still alive and answering afterwards.
code=$(api PUT "/v1/blobs/$SRC_SHA" -H 'Content-Length: 100000' --data-binary "@$T/liar" --max-time 2)
check "truncated body: no answer while the body is incomplete (got $code)" [ "$code" = 000 ]
check "... the daemon is alive" kill -0 "$DAEMON_PID"
check "... and still serves" [ "$(api GET /v1/status)" = 200 ]
unchanged "truncated body"

# 7. malformed JSON
printf '{"version":1, "argv": [' > "$T/malformed.json"
check "malformed JSON: 400" [ "$(api POST /v1/jobs --data-binary "@$T/malformed.json")" = 400 ]
printf '[1,2,3]' > "$T/malformed.json"
check "a JSON array as a job: 400" [ "$(api POST /v1/jobs --data-binary "@$T/malformed.json")" = 400 ]
unchanged "malformed JSON"

# 8. a job naming blobs the daemon does not have
printf 'fn main() {}\n' > "$T/absent.rs"
ABSENT=$(sha256_of "$T/absent.rs")
jq --arg h "$ABSENT" '.inputs += [{path: "/cachepot/registry/cfg-if-1.0.0/src/extra.rs", mode: 420, sha256: $h}]' \
	"$T/job.json" > "$T/missing.json"
k=$("$HELPER" key < "$T/missing.json")
jq --arg k "$k" '. + {expected_key: $k}' "$T/missing.json" > "$T/missing2.json"
check "missing blobs: 424" [ "$(api POST /v1/jobs --data-binary "@$T/missing2.json")" = 424 ]
check "... listing exactly the missing one" jqe ".missing == [\"$ABSENT\"]" "$T/body"
unchanged "missing blobs"

# 9. a uid not on the allow-list may read but not write
code=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X PUT --data-binary "@$T/absent.rs" \
	"http://d/v1/blobs/$ABSENT")
check "uid 65534 uploading a blob: 403" [ "$code" = 403 ]
jq --arg k "$GOOD_KEY" '. + {expected_key: $k}' "$T/job.json" > "$T/good.json"
chmod 644 "$T/good.json"
code=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" --data-binary "@$T/good.json" http://d/v1/jobs)
check "uid 65534 submitting a job: 403" [ "$code" = 403 ]
code=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://d/v1/status)
check "uid 65534 reading the status: 200" [ "$code" = 200 ]
check "... the forbidden metric counts 2" [ "$(metric http_forbidden_total)" = 2 ]
unchanged "uid not allowed"

check "the daemon stops cleanly after all this" daemon_stop
