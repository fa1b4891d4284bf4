#!/bin/sh
# cachepot-certs.sh: the certificates a LAN of cachepot machines needs, made with the openssl
# command line.
#
#   contrib/cachepot-certs.sh DIR SERVER-NAME [CLIENT-NAME...]
#
# DIR/ca.crt, DIR/ca.key          a CA of your own (made once, reused on later runs)
# DIR/server.crt, DIR/server.key  the worker's certificate for cachepotd --listen-tls; its
#                                 subjectAltName is SERVER-NAME (a DNS name or an IPv4/IPv6
#                                 address), which is what clients check against the URL
# DIR/CLIENT.crt, DIR/CLIENT.key  one certificate per client allowed to submit jobs
#                                 (CACHEPOT_TLS_CERT, CACHEPOT_TLS_KEY)
#
# Why a CA of your own: cachepotd accepts writes only from client certificates signed by the CA
# given to --client-ca, so the CA is the list of who may spend the worker's CPU and disk. Reads
# need no certificate (every object is verified by its reader), so machines that only read get
# ca.crt alone (CACHEPOT_CACERT, cachepot-fs -o cacert=). Keys are P-256: small, fast to
# handshake, and accepted by every OpenSSL and libcurl Debian ships. Keys are mode 0600;
# ca.key signs nothing else and can be moved offline once the certificates are made.
# Existing certificates are kept (the server's is made again for another name); delete a
# file to have it made again.
set -eu

usage() {
	echo "usage: $0 DIR SERVER-NAME [CLIENT-NAME...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
dir=$1
server=$2
shift 2
days=${CACHEPOT_CERT_DAYS:-825}

case $server in
'' | */* | *' '*) echo "$0: bad server name '$server'" >&2; exit 2 ;;
esac
for c in "$@"; do
	case $c in
	'' | */* | .* | *' '* | ca | server) echo "$0: bad client name '$c'" >&2; exit 2 ;;
	esac
done

mkdir -p "$dir"
umask 077
ext=$(mktemp "$dir/.ext.XXXXXX")
trap 'rm -f "$ext" "$dir"/.csr.*' EXIT

# An IP address goes into the subjectAltName as IP:, anything else as DNS:. Clients match the
# host of the URL against these, never against the subject's CN.
if printf '%s' "$server" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$|:'; then
	san="IP:$server"
else
	san="DNS:$server"
fi

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME.key (made if absent), NAME.crt signed by the CA.
sign() {
	[ -s "$dir/$1.key" ] || newkey "$dir/$1.key"
	csr="$dir/.csr.$1"
	openssl req -new -key "$dir/$1.key" -subj "$2" -out "$csr"
	printf '%s\n' "$3" > "$ext"
	openssl x509 -req -in "$csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
		-CAserial "$dir/ca.srl" -days "$days" -sha256 -extfile "$ext" -out "$dir/$1.crt" 2>/dev/null
	rm -f "$csr"
}

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
	newkey "$dir/ca.key"
	openssl req -new -x509 -key "$dir/ca.key" -subj "/CN=cachepot CA" -days "$days" -sha256 \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.crt"
fi

# A server certificate for another name is made again (its key is kept).
have_san=$(openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | sed 1d | tr -d ' ') || true
if [ "$have_san" != "$(printf '%s' "$san" | sed 's/^IP:/IPAddress:/')" ]; then
	sign server "/CN=$server" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"
fi

for c in "$@"; do
	[ -s "$dir/$c.crt" ] && continue
	sign "$c" "/CN=$c" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done

chmod 644 "$dir/ca.crt" "$dir/server.crt"
for c in "$@"; do chmod 644 "$dir/$c.crt"; done

echo "CA:          $dir/ca.crt (key $dir/ca.key)"
echo "server:      $dir/server.crt $dir/server.key ($san)"
for c in "$@"; do
	echo "client $c: $dir/$c.crt $dir/$c.key"
done
