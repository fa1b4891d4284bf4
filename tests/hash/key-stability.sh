#!/bin/sh
# Two copies of the corpus workspace at different absolute paths give identical keys for every
# cacheable invocation: the workspace is built once with real cargo (recording each rustc
# invocation), copied elsewhere with its target dir, and every recorded invocation is explained
# in both places.
. "$top_srcdir/tests/tap.sh"
set -u
rustc=$(find_rustc) || skip_all "no rustc"
command -v python3 > /dev/null || skip_all "no python3"
corpus="$SHARED_DIR/corpus/small"
[ -d "$corpus" ] || skip_all "no corpus at $corpus"
T=$(mktemp -d /tmp/cachepot-stability.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export CACHEPOT_CACHE_DIR="$T/cache"

mkdir -p "$T/a" "$T/b/somewhere/much/deeper"
cp -r "$corpus" "$T/a/small"
(cd "$T/a/small" && CACHEPOT_RECORD="$T/rec.jsonl" RUSTC_WRAPPER="$top_srcdir/tests/data/record-wrapper.py" \
	cargo build --offline > "$T/build.log" 2>&1) || { tail -n 20 "$T/build.log" | sed 's/^/# /'; bail "cargo build failed"; }
cp -a "$T/a/small" "$T/b/somewhere/much/deeper/small"

python3 - "$T" "$top_builddir/cachepot" <<'PY'
import json, os, subprocess, sys
T, cachepot = sys.argv[1], sys.argv[2]
a, b = T + "/a/small", T + "/b/somewhere/much/deeper/small"
recs = [json.loads(l) for l in open(T + "/rec.jsonl")]

def explain(rec, root):
    env = {k: v.replace(a, root) for k, v in rec["env"].items()}
    env["PATH"] = os.environ["PATH"]
    env["HOME"] = os.environ.get("HOME", "/root")
    env["CACHEPOT_CACHE_DIR"] = os.environ["CACHEPOT_CACHE_DIR"]
    argv = [x.replace(a, root) for x in rec["argv"]]
    out = subprocess.run([cachepot, "--explain"] + argv, cwd=rec["cwd"].replace(a, root), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)

lines = []
cacheable = 0
# Two at a time: the dep-info pass is a rustc run, and the machine has two cores.
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(max_workers=2) as pool:
    results = list(pool.map(lambda r: (explain(r, a), explain(r, b)), recs))
for rec, (ja, jb) in zip(recs, results):
    argv = rec["argv"]
    name = argv[argv.index("--crate-name") + 1] if "--crate-name" in argv else " ".join(argv[1:3])
    if ja is None or jb is None:
        lines.append((False, "explain runs for %s" % name))
        continue
    if ja["cacheable"] != jb["cacheable"] or ja["reason"] != jb["reason"]:
        lines.append((False, "%s: same decision in both copies (%s / %s)" % (name, ja["reason"], jb["reason"])))
        continue
    if not ja["cacheable"]:
        continue
    cacheable += 1
    same = ja["key"] == jb["key"]
    # inputs must all be canonical, and the same list in both
    same_inputs = ja["inputs"] == jb["inputs"] and all(i["path"].startswith("/cachepot/") for i in ja["inputs"])
    lines.append((same and same_inputs, "%s: same key in both copies (%s)" % (name, ja["key"][:16])))
lines.append((cacheable >= 40, "%d cacheable invocations of %d (at least 40 expected)" % (cacheable, len(recs))))
print("1..%d" % len(lines))
for n, (good, text) in enumerate(lines, 1):
    print("%s %d - %s" % ("ok" if good else "not ok", n, text))
PY
