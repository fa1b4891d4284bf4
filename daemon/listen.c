/* cachepotd's TCP listeners and TLS; see listen.h. */
#include "config.h"

#include "daemon/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/error.h"

#define LISTEN_BACKLOG 128
#define SESSION_ID_CONTEXT "cachepotd"

/* The port after a ':' at P: 1 to 65535, decimal digits only. */
static int parse_port(const char *p, in_port_t *port)
{
	unsigned long v = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -EINVAL;
	}
	if (*p != '\0' || v == 0)
		return -EINVAL;
	*port = htons((in_port_t)v);
	return 0;
}

int listen_address_parse(const char *spec, struct sockaddr_storage *addr, socklen_t *len,
			 char *err, size_t errlen)
{
	char host[LISTEN_ADDRESS_MAX];
	const char *colon, *host_start = spec;
	size_t host_len;
	in_port_t port;
	int v6 = 0;

	memset(addr, 0, sizeof(*addr));
	if (strlen(spec) >= LISTEN_ADDRESS_MAX)
		goto bad;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			goto bad;
		host_start = spec + 1;
		host_len = (size_t)(close - host_start);
		colon = close + 1;
		v6 = 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			goto bad;          /* an IPv6 address needs its brackets */
		host_len = (size_t)(colon - spec);
	}
	if (parse_port(colon + 1, &port) < 0)
		return error_format(err, errlen, -EINVAL, "'%s': the port must be 1 to 65535", spec);
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';

	if (host_len == 0 && !v6) {
		/* ":PORT": every address. One IPv6 socket that also takes IPv4 (see listen_tcp). */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = port;
		*len = sizeof(*sin6);
		return 0;
	}
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			goto bad;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = port;
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)addr;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			goto bad;
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		*len = sizeof(*sin);
	}
	return 0;
bad:
	return error_format(err, errlen, -EINVAL,
			    "'%s': ADDRESS:PORT expected, with a numeric address (127.0.0.1:8080, "
			    "[::1]:8080, or :8080 for every address)", spec);
}

int listen_tcp(struct evhttp *http, struct event_base *base, const char *spec,
	       struct evconnlistener **out, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	struct evconnlistener *listener;
	socklen_t len;
	int fd, ret, one = 1, zero = 0;

	ret = listen_address_parse(spec, &addr, &len, err, errlen);
	if (ret < 0)
		return ret;
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return error_format(err, errlen, -errno, "%s: %s", spec, strerror(errno));
	/* SO_REUSEADDR: a restart binds again while connections of the last run sit in
	 * TIME_WAIT. ":PORT" takes IPv4 on its IPv6 socket whatever net.ipv6.bindv6only says. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0
	    || (addr.ss_family == AF_INET6 && spec[0] == ':'
		&& setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
	    || bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		ret = error_format(err, errlen, -errno, "%s: %s", spec, strerror(errno));
		close(fd);
		return ret;
	}
	/* Our own listener rather than evhttp_accept_socket: its accepted sockets are CLOEXEC
	 * (accept4), which evhttp's does not ask for. Backlog 0: listen() was called above. */
	listener = evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				      0, fd);
	if (!listener) {
		close(fd);
		return error_format(err, errlen, -ENOMEM, "%s: out of memory", spec);
	}
	if (!evhttp_bind_listener(http, listener)) {
		evconnlistener_free(listener);
		return error_format(err, errlen, -ENOMEM, "%s: out of memory", spec);
	}
	if (out)
		*out = listener;
	return 0;
}

/* The first error OpenSSL queued, as text (its reason alone: the rest names OpenSSL's
 * internals), then the queue cleared. */
static const char *openssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return reason ? reason : "unknown error";
}

/* Open FILE once ourselves, so that a missing or unreadable file is told as the kernel says it
 * rather than as OpenSSL's error stack does. */
static int file_readable(const char *option, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "re");

	if (!f)
		return error_format(err, errlen, -errno, "--%s %s: %s", option, file, strerror(errno));
	fclose(f);
	return 0;
}

int listen_tls_context_new(const char *cert_file, const char *key_file, const char *client_ca_file,
			   struct ssl_ctx_st **out, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *ca_names = NULL;
	SSL_CTX *ctx = NULL;
	int ret;

	*out = NULL;
	if ((ret = file_readable("tls-cert", cert_file, err, errlen)) < 0
	    || (ret = file_readable("tls-key", key_file, err, errlen)) < 0
	    || (ret = file_readable("client-ca", client_ca_file, err, errlen)) < 0)
		return ret;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return error_format(err, errlen, -ENOMEM, "TLS: %s", openssl_reason());
	ret = -EINVAL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		error_format(err, errlen, ret, "TLS: %s", openssl_reason());
		goto out;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		error_format(err, errlen, ret, "--tls-cert %s: %s", cert_file, openssl_reason());
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		error_format(err, errlen, ret, "--tls-key %s: %s", key_file, openssl_reason());
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		error_format(err, errlen, ret, "--tls-key %s is not the key of --tls-cert %s: %s",
			     key_file, cert_file, openssl_reason());
		goto out;
	}
	ca_names = SSL_load_client_CA_file(client_ca_file);
	if (!ca_names || SSL_CTX_load_verify_locations(ctx, client_ca_file, NULL) != 1) {
		error_format(err, errlen, ret, "--client-ca %s: %s", client_ca_file,
			     ca_names ? openssl_reason() : "no CA certificate in it");
		goto out;
	}
	/* The CA names go into the CertificateRequest, so a client with several certificates
	 * can pick the right one. */
	SSL_CTX_set_client_CA_list(ctx, ca_names);
	ca_names = NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* Needed once SSL_VERIFY_PEER is set, or a resumed session fails its handshake. */
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CONTEXT,
				       sizeof(SESSION_ID_CONTEXT) - 1);
	*out = ctx;
	ctx = NULL;
	ret = 0;
out:
	if (ca_names)
		sk_X509_NAME_pop_free(ca_names, X509_NAME_free);
	SSL_CTX_free(ctx);
	return ret;
}

void listen_tls_context_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* When the bevcb returns NULL instead, evhttp falls back to a plain bufferevent; such a
 * connection then fails its handshake and could not write anyway (listen_peer_of finds no SSL). */
struct bufferevent *listen_tls_bufferevent_new(struct event_base *base, struct ssl_ctx_st *ctx)
{
	struct bufferevent *bev;
	SSL *ssl = SSL_new(ctx);

	if (!ssl)
		return NULL;
	/* CLOSE_ON_FREE: freeing the bufferevent frees SSL and closes the socket. */
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* HTTP frames its own messages: a client that closes without close_notify (most do)
	 * has not truncated anything evhttp would accept. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

enum listen_peer listen_peer_of(struct evhttp_connection *conn, char *who, size_t wholen)
{
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	char *address = NULL;
	ev_uint16_t port = 0;
	X509 *cert;
	SSL *ssl;
	int fd;

	if (wholen)
		who[0] = '\0';
	if (!bev)
		return LISTEN_PEER_PLAIN;
	fd = bufferevent_getfd(bev);
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&addr, &len) == 0
	    && addr.ss_family == AF_UNIX) {
		if (wholen)
			snprintf(who, wholen, "the Unix socket");
		return LISTEN_PEER_LOCAL;
	}
	evhttp_connection_get_peer(conn, &address, &port);
	if (wholen)
		snprintf(who, wholen, "%s port %u", address ? address : "?", (unsigned)port);
	ssl = bufferevent_openssl_get_ssl(bev);
	if (!ssl)
		return LISTEN_PEER_PLAIN;
	cert = SSL_get0_peer_certificate(ssl);
	if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
		return LISTEN_PEER_TLS_ANONYMOUS;
	if (wholen) {
		size_t used = strlen(who);
		char subject[256];
		X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
		snprintf(who + used, wholen - used, " (certificate %s)", subject);
	}
	return LISTEN_PEER_TLS_CLIENT;
}
