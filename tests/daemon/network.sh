#!/bin/sh
# cachepotd on the network, on 127.0.0.1 only: --listen serves reads over plain HTTP,
# --listen-tls serves reads to anyone and takes writes only from a client certificate of the
# --client-ca; refused writes are 403, store nothing and are counted; manifests and blobs carry
# immutable caching headers, a strong ETag and 304 for If-None-Match, a 404 says no-store; the
# key --print-public-key prints is the one that signs the manifests; a bad address or a missing
# certificate stops the start with a message naming the option. curl(1) is the client.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root (sandbox, store)"
for p in jq openssl curl perl; do
	command -v $p >/dev/null || skip_all "needs $p"
done
[ -d "$REGISTRY/cfg-if-1.0.0" ] || skip_all "needs librust-cfg-if-dev"

tap_plan 43
daemon_setup
C=$T/certs
toolchain_install || bail "no toolchain tree"

# --- certificates: our CA with a writer, and another CA with its own client ---
sh "$top_srcdir/contrib/cachepot-certs.sh" "$C" 127.0.0.1 writer > "$T/certs.log" 2>&1 &&
	sh "$top_srcdir/contrib/cachepot-certs.sh" "$T/other" 127.0.0.1 intruder >> "$T/certs.log" 2>&1
check "cachepot-certs.sh: a CA, a server and a client certificate, and another CA's client" \
	sh -c "openssl verify -CAfile '$C/ca.crt' '$C/server.crt' '$C/writer.crt' >/dev/null &&
		! openssl verify -CAfile '$C/ca.crt' '$T/other/intruder.crt' >/dev/null 2>&1"

# --- start-up errors ---
# start_fails NAME OPTION ARGS...: cachepotd exits non-zero at once and its message names OPTION.
start_fails() {
	name=$1 option=$2; shift 2
	timeout 20 "$CACHEPOTD" --store "$STORE" --socket "$SOCK" "$@" > "$T/start.out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q -- "$option" "$T/start.out"; then
		ok "$name: exit $rc, $(head -n 1 "$T/start.out")"
	else
		not_ok "$name: exit $rc"; sed 's/^/#   /' "$T/start.out"
	fi
}
start_fails "a bad --listen address" --listen --listen 127.0.0.1:notaport
start_fails "--listen with a host name" --listen --listen localhost:8080
start_fails "an IPv6 --listen-tls address without brackets" --listen-tls --listen-tls ::1:8443 \
	--tls-cert "$C/server.crt" --tls-key "$C/server.key" --client-ca "$C/ca.crt"
start_fails "--listen-tls without --client-ca" --client-ca --listen-tls 127.0.0.1:8443 \
	--tls-cert "$C/server.crt" --tls-key "$C/server.key"
start_fails "a missing --tls-cert file" --tls-cert --listen-tls 127.0.0.1:8443 \
	--tls-cert "$T/nonexistent.crt" --tls-key "$C/server.key" --client-ca "$C/ca.crt"
start_fails "a --tls-key that is not the certificate's" --tls-key --listen-tls 127.0.0.1:8443 \
	--tls-cert "$C/server.crt" --tls-key "$C/writer.key" --client-ca "$C/ca.crt"
check "none of them left a socket behind" test ! -e "$SOCK"

# --- the public key, before the first start (the store is made for it) ---
"$CACHEPOTD" --store "$STORE" --print-public-key > "$T/pub" 2> "$T/pub.err"
PUB=$(cat "$T/pub")
check "--print-public-key prints 64 lowercase hex digits and a newline" \
	sh -c "grep -Eqx '[0-9a-f]{64}' '$T/pub' && [ \$(wc -c < '$T/pub') = 65 ]"

# --- the daemon on two random ports of 127.0.0.1 (again with others if they are taken) ---
started=
for _ in 1 2 3 4 5; do
	PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000 ))
	TPORT=$(( PORT + 1 ))
	if daemon_start --jobs 1 --listen "127.0.0.1:$PORT" --listen-tls "127.0.0.1:$TPORT" \
		--tls-cert "$C/server.crt" --tls-key "$C/server.key" --client-ca "$C/ca.crt"; then
		started=1; break
	fi
	DAEMON_PID=
done
[ -n "$started" ] || bail "cachepotd did not start with --listen and --listen-tls"
HTTP=http://127.0.0.1:$PORT
HTTPS=https://127.0.0.1:$TPORT
# plain METHOD PATH [CURL ARGS]: over --listen. tls, tls_cert, tls_other: over --listen-tls
# without a client certificate, with ours, with the other CA's. Status printed, body in $T/body,
# headers in $T/headers.
# (curl writes no file for an empty body: the last one is removed first.)
plain() { m=$1 p=$2; shift 2; rm -f "$T/body"; curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 60 -X "$m" "$@" "$HTTP$p"; }
tls() { m=$1 p=$2; shift 2; rm -f "$T/body"; curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 60 --cacert "$C/ca.crt" -X "$m" "$@" "$HTTPS$p"; }
tls_cert() { tls "$@" --cert "$C/writer.crt" --key "$C/writer.key"; }
tls_other() { tls "$@" --cert "$T/other/intruder.crt" --key "$T/other/intruder.key"; }
header() { tr -d '\r' < "$T/headers" | awk -v h="$1" 'tolower($0) ~ "^" tolower(h) ":" { sub(/^[^:]*: */, ""); print }'; }

check "reads over --listen: GET /v1/status" test "$(plain GET /v1/status)" = 200
check "reads over --listen-tls without a client certificate: GET /v1/status" \
	test "$(tls GET /v1/status)" = 200

# --- writes that must be refused ---
printf 'bytes nobody may store this way\n' > "$T/blob"
BLOB=$(sha256_of "$T/blob")
echo '{"version":1}' > "$T/job.json"
before=$(store_snapshot)
forbidden0=$(metric http_forbidden_total)
check "PUT of a blob over plain HTTP: 403" test "$(plain PUT /v1/blobs/$BLOB --data-binary @"$T/blob")" = 403
check "POST of a job over plain HTTP: 403" test "$(plain POST /v1/jobs --data-binary @"$T/job.json")" = 403
check "PUT of a toolchain over plain HTTP: 403" test "$(plain PUT /v1/toolchains/$TC --data-binary @"$T/blob")" = 403
check "PUT of a blob over TLS without a client certificate: 403" \
	test "$(tls PUT /v1/blobs/$BLOB --data-binary @"$T/blob")" = 403
check "POST of a job over TLS without a client certificate: 403" \
	test "$(tls POST /v1/jobs --data-binary @"$T/job.json")" = 403
code=$(tls_other PUT /v1/blobs/$BLOB --data-binary @"$T/blob")
check "PUT over TLS with a certificate of another CA: no handshake or 403 ($code)" \
	sh -c "[ '$code' = 000 ] || [ '$code' = 403 ]"
check "the refusals were counted: $(( $(metric http_forbidden_total) - forbidden0 )) in cachepotd_http_forbidden_total" \
	test "$(metric http_forbidden_total)" -ge $((forbidden0 + 5))
check "nothing was stored: the store is as before and the blob is not there" \
	sh -c "[ \"\$(cd '$STORE' && find cas toolchains jobs tmp -mindepth 1 -printf '%p %s %m\n' 2>/dev/null | sort)\" = '$before' ] &&
		[ \$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$SOCK' http://d/v1/blobs/$BLOB) = 404 ]"

# --- writes with our client certificate ---
check "PUT of a blob over TLS with a client certificate: 201" \
	test "$(tls_cert PUT /v1/blobs/$BLOB --data-binary @"$T/blob")" = 201
check "... and is stored, byte for byte" \
	sh -c "cmp -s '$T/blob' '$STORE/cas/$(printf %s "$BLOB" | cut -c1-2)/$BLOB'"
check "... yet not served over plain HTTP: an uploaded input no manifest names is 404" \
	test "$(plain GET /v1/blobs/$BLOB)" = 404
# A body larger than a reader's limit (daemon/peers.h): the connection's rights are set when its
# handshake is done, so a client certificate's upload is read and a reader's is refused unread.
# The refusals ask for "100 Continue" first: the 413 then comes from the header alone, before
# any of the body is sent (one that is sent is not read, and the close can beat the answer).
head -c 1048576 /dev/urandom > "$T/big"
BIG=$(sha256_of "$T/big")
check "a 1 MiB blob over TLS with a client certificate: 201" \
	test "$(tls_cert PUT /v1/blobs/$BIG --data-binary @"$T/big")" = 201
code=$(tls PUT /v1/blobs/$BLOB --data-binary @"$T/big" -H 'Expect: 100-continue')
check "a 1 MiB body over TLS without a client certificate: 413, refused before it is read ($code)" \
	test "$code" = 413
code=$(plain PUT /v1/blobs/$BLOB --data-binary @"$T/big" -H 'Expect: 100-continue')
check "a 1 MiB body over plain HTTP: 413 ($code)" test "$code" = 413
check "the daemon's log says why each kind of write was refused" \
	sh -c "grep -q 'refused a write over plain HTTP from 127.0.0.1' '$T/daemon.log' &&
		grep -q 'refused a write over TLS without a client certificate from 127.0.0.1' '$T/daemon.log'"

# A real job over TLS: cfg-if's sources uploaded, then compiled in the sandbox and published.
CFG=cfg-if-1.0.0
: > "$T/cfg.inputs"
(cd "$REGISTRY/$CFG" && find src -name '*.rs' | sort) > "$T/cfg.files"
upload_fail=
while read -r f; do
	h=$(sha256_of "$REGISTRY/$CFG/$f")
	code=$(tls_cert PUT "/v1/blobs/$h" --data-binary "@$REGISTRY/$CFG/$f")
	[ "$code" = 201 ] || upload_fail="$upload_fail $f:$code"
	echo "/cachepot/registry/$CFG/$f $h" >> "$T/cfg.inputs"
done < "$T/cfg.files"
lib_argv cfg_if 2018 /cachepot/registry/$CFG/src/lib.rs 4a499ef178f2ff1a > "$T/argv"
pkg_env cfg-if 1.0.0 cfg_if > "$T/env"
job_json "$(cat "$T/argv")" "$(cat "$T/env")" /cachepot/registry/$CFG "$T/cfg.inputs" > "$T/cfg.json"
KEY=$(with_key "$T/cfg.json")
code=$(tls_cert POST /v1/jobs --data-binary "@$T/cfg.json")
check "a job over TLS with a client certificate (inputs uploaded the same way) is published: $code" \
	sh -c "[ -z '$upload_fail' ] && [ '$code' = 200 ]"
[ "$code" = 200 ] || { echo "# uploads:${upload_fail:- ok}"; head -c 2000 "$T/body" | sed 's/^/# /'; }
RLIB=$(jq -r '.manifest.manifest.outputs[] | select(.name | endswith(".rlib")) | .sha256' "$T/body" 2>/dev/null)

# --- reads: manifests and blobs, their caching headers ---
code=$(plain GET /v1/manifests/$KEY)
cp "$T/body" "$T/manifest"
check "GET /v1/manifests/<key> over --listen: 200, the manifest of that key" \
	sh -c "[ '$code' = 200 ] && jq -e '.manifest.key == \"$KEY\"' '$T/manifest' >/dev/null"
check "... Cache-Control: public, max-age=31536000, immutable" \
	test "$(header Cache-Control)" = "public, max-age=31536000, immutable"
check "... ETag: \"<key>\" (strong)" test "$(header ETag)" = "\"$KEY\""
code=$(plain GET /v1/manifests/$KEY -H "If-None-Match: \"$KEY\"")
check "If-None-Match with that ETag: 304, no body, the ETag again" \
	sh -c "[ '$code' = 304 ] && [ ! -s '$T/body' ] && [ '$(header ETag)' = '\"$KEY\"' ]"
code=$(plain GET /v1/manifests/$KEY -H "If-None-Match: \"$BLOB\"")
check "If-None-Match with another ETag: 200 with the manifest" \
	sh -c "[ '$code' = 200 ] && cmp -s '$T/body' '$T/manifest'"
code=$(plain GET /v1/blobs/$RLIB)
check "GET /v1/blobs/<sha256> (the rlib): 200, its bytes, immutable, ETag \"<sha256>\"" \
	sh -c "[ '$code' = 200 ] && [ \$(sha256sum < '$T/body' | cut -c1-64) = '$RLIB' ] &&
		[ '$(header Cache-Control)' = 'public, max-age=31536000, immutable' ] && [ '$(header ETag)' = '\"$RLIB\"' ]"
code=$(tls GET /v1/blobs/$RLIB -H "If-None-Match: \"$BLOB\", W/\"$RLIB\"")
check "If-None-Match over TLS with a list holding the blob's tag (weakly compared): 304" \
	sh -c "[ '$code' = 304 ] && [ ! -s '$T/body' ]"
MISSING=0000000000000000000000000000000000000000000000000000000000000000
code=$(plain GET /v1/manifests/$MISSING)
check "a key not published: 404 with Cache-Control: no-store" \
	sh -c "[ '$code' = 404 ] && [ '$(header Cache-Control)' = no-store ] && [ -z '$(header ETag)' ]"
code=$(plain GET /v1/blobs/$MISSING)
check "a blob not there: 404 with Cache-Control: no-store" \
	sh -c "[ '$code' = 404 ] && [ '$(header Cache-Control)' = no-store ]"

# --- the public key signs the manifests ---
"$CACHEPOTD" --store "$STORE" --print-public-key > "$T/pub2" 2>> "$T/pub.err"
check "--print-public-key next to the running daemon prints the same key" test "$(cat "$T/pub2")" = "$PUB"
check "the manifest's signature.public_key is that key" \
	test "$(jq -r .signature.public_key "$T/manifest")" = "$PUB"
# Ed25519 over jansson's compact sorted form of .manifest, which jq -cjS reproduces for
# these ASCII fields; the raw key goes into a SubjectPublicKeyInfo (RFC 8410 prefix).
jq -cjS .manifest "$T/manifest" > "$T/signed"
jq -r .signature.value "$T/manifest" | perl -ne 'chomp; print pack("H*", $_)' > "$T/sig"
printf '302a300506032b6570032100%s' "$PUB" | perl -ne 'print pack("H*", $_)' > "$T/pub.der"
openssl pkey -pubin -inform DER -in "$T/pub.der" -out "$T/pub.pem" 2>> "$T/pub.err"
check "the signature verifies with the printed key (openssl pkeyutl)" \
	sh -c "openssl pkeyutl -verify -pubin -inkey '$T/pub.pem' -rawin -in '$T/signed' -sigfile '$T/sig' >/dev/null 2>&1"
printf x >> "$T/signed"
check "... and not over other bytes" \
	sh -c "! openssl pkeyutl -verify -pubin -inkey '$T/pub.pem' -rawin -in '$T/signed' -sigfile '$T/sig' >/dev/null 2>&1"

check "the Unix socket keeps its rule: root may write there" \
	sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --unix-socket '$SOCK' -X PUT --data-binary @'$T/blob' http://d/v1/blobs/$BLOB) = 201 ]"
check "SIGTERM stops it cleanly, the TLS listener and connections included" daemon_stop
check "no sanitizer report in the daemon's log" \
	sh -c "! grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error' '$T/daemon.log'"
[ "$tap_failed" = 0 ] || { echo "# daemon log:"; tail -n 30 "$T/daemon.log" | sed 's/^/#   /'; }
exit 0
