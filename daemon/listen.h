/* cachepotd on the network: TCP listeners for plain HTTP (--listen) and TLS (--listen-tls), and
 * what the peer of a connection may do.
 *
 * Rights. Reads (manifests, blobs, metrics, status) are open on every listener: each object is
 * verified by its reader, by signature or by hash. Writes (blob and toolchain uploads, jobs) cost
 * the worker CPU and disk, so they are allowed only to
 *   - a peer of the Unix socket whose uid or gids are on the allow-lists (server.c decides, with
 *     SO_PEERCRED), or
 *   - a TLS peer that presented a client certificate which verified against --client-ca.
 * Plain TCP never writes. The rights are read off the connection itself (is its bufferevent an
 * OpenSSL one, did the handshake verify a certificate, is the socket AF_UNIX), never off which
 * port it came in on, so a connection whose TLS could not be set up cannot write either.
 * Renegotiation is off, so the certificate a connection was verified with is the one it keeps.
 *
 * Certificates. The SSL_CTX asks every client for a certificate (SSL_VERIFY_PEER) but does not
 * insist (no SSL_VERIFY_FAIL_IF_NO_PEER_CERT), so readers need none. A certificate that is
 * presented and does not verify (another CA, expired, not for client use) fails the handshake.
 *
 * Everything here runs on the loop thread.
 */
#ifndef CACHEPOT_DAEMON_LISTEN_H
#define CACHEPOT_DAEMON_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct evhttp;
struct evhttp_connection;
struct evconnlistener;
struct event_base;
struct bufferevent;
struct ssl_ctx_st;                    /* OpenSSL's SSL_CTX */

#define LISTEN_ADDRESS_MAX 64         /* "[<IPv6 address>]:<port>" and then some */

/* Parse SPEC, "IPv4:PORT", "[IPv6]:PORT" or ":PORT" (every address, IPv6 and IPv4), into ADDR
 * and *LEN. Numeric addresses only: a name would bind whatever it resolves to at start. Returns
 * 0, or -EINVAL with a message in ERR. */
int listen_address_parse(const char *spec, struct sockaddr_storage *addr, socklen_t *len,
			 char *err, size_t errlen) __attribute__((warn_unused_result));

/* Bind and listen on SPEC (see listen_address_parse) and serve HTTP's requests from it. The
 * socket is SOCK_CLOEXEC, and so is every connection accepted from it. *OUT (may be NULL) is
 * the listener, owned by HTTP (evhttp_free frees it and closes the socket); disable it to stop
 * accepting. Returns 0, or -errno with a message naming SPEC in ERR. */
int listen_tcp(struct evhttp *http, struct event_base *base, const char *spec,
	       struct evconnlistener **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A server SSL_CTX: the certificate chain CERT_FILE and its key KEY_FILE (PEM), client
 * certificates requested and verified against the CA certificates in CLIENT_CA_FILE, TLS 1.2
 * at least, no renegotiation. On success *OUT is the caller's (listen_tls_context_free). Returns
 * 0, or -EINVAL/-errno with a message in ERR that names the option of the file at fault
 * (--tls-cert, --tls-key, --client-ca). */
int listen_tls_context_new(const char *cert_file, const char *key_file, const char *client_ca_file,
			   struct ssl_ctx_st **out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void listen_tls_context_free(struct ssl_ctx_st *ctx);

/* A server-side OpenSSL bufferevent for a connection evhttp accepts, with an SSL of CTX
 * (borrowed: it must outlive the bufferevent), its socket not set yet (evhttp sets it, which
 * starts the handshake); freeing it frees the SSL and closes the socket. NULL when out of
 * memory. For an evhttp bevcb (daemon/peers.h). */
struct bufferevent *listen_tls_bufferevent_new(struct event_base *base, struct ssl_ctx_st *ctx);

/* What the peer of a connection is. */
enum listen_peer {
	LISTEN_PEER_LOCAL,            /* the Unix socket: its peer credentials decide */
	LISTEN_PEER_PLAIN,            /* plain TCP (or nothing known): reads only */
	LISTEN_PEER_TLS_ANONYMOUS,    /* TLS without a client certificate: reads only */
	LISTEN_PEER_TLS_CLIENT,       /* TLS with a client certificate that verified: may write */
};

/* The kind of CONN's peer (NULL: LISTEN_PEER_PLAIN). WHO (WHOLEN bytes, may be 0) receives a
 * description for messages: the peer's address and, for a TLS client, its certificate's
 * subject. */
enum listen_peer listen_peer_of(struct evhttp_connection *conn, char *who, size_t wholen);

#endif
