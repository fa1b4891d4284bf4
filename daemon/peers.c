/* cachepotd's connections and their peers; see peers.h. */
#include "config.h"

#include "daemon/peers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "daemon/daemon.h"
#include "daemon/listen.h"

#define PEER_GROUPS_MAX 256
#define PEER_KEY_MAX 64          /* "uid 4294967295", or an IPv6 address in text */

/* One connection evhttp made through our bevcb. PENDING from the bevcb until the deferred
 * check; OPEN from then until evhttp closes it. */
struct peer_conn {
	struct peer_conn *next, *prev;
	struct peers *owner;
	struct bufferevent *bev;         /* a reference of ours while PENDING */
	struct evhttp_connection *conn;  /* NULL while PENDING */
	int open;
	char key[PEER_KEY_MAX];
	void (*watch)(struct evhttp_connection *conn, void *arg);
	void *watch_arg;
};

/* The bevcb's argument: one per evhttp served. */
struct peers_http {
	struct peers_http *next;
	struct peers *owner;
	struct ssl_ctx_st *ctx;          /* NULL: plain sockets */
};

struct peers {
	struct daemon *d;
	uint64_t writer_body_max;
	unsigned max_per_peer;
	struct peer_conn *pending;       /* made by a bevcb, not checked yet */
	struct peer_conn *open;          /* checked and kept */
	size_t n_open;
	struct event *check_event;       /* runs check_pending */
	struct peers_http *https;
	time_t last_refusal_log;
};

static void list_add(struct peer_conn **head, struct peer_conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static void list_remove(struct peer_conn **head, struct peer_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

int peers_local_may_write(const struct daemon *d, int fd, uid_t *uid)
{
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t len = sizeof(struct ucred);
	struct ucred cred;
	size_t n_groups;

	if (uid)
		*uid = (uid_t)-1;
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
	    || len != sizeof(cred))
		return 0;
	if (uid)
		*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid())
		return 1;
	for (size_t i = 0; i < d->cfg->n_allow_uids; i++)
		if (d->cfg->allow_uids[i] == cred.uid)
			return 1;
	if (d->cfg->n_allow_gids == 0)
		return 0;
	groups[0] = cred.gid;
	n_groups = 1;
	len = sizeof(groups) - sizeof(gid_t);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups + 1, &len) == 0)
		n_groups += len / sizeof(gid_t);
	for (size_t g = 0; g < n_groups; g++)
		for (size_t i = 0; i < d->cfg->n_allow_gids; i++)
			if (d->cfg->allow_gids[i] == groups[g])
				return 1;
	return 0;
}

/* Set C's body limit from what its peer may do now (see peers.h). */
static void apply_rights(struct peer_conn *c)
{
	struct peers *p = c->owner;
	int writer = 0;

	switch (listen_peer_of(c->conn, NULL, 0)) {
	case LISTEN_PEER_LOCAL:
		writer = peers_local_may_write(p->d, bufferevent_getfd(c->bev), NULL);
		break;
	case LISTEN_PEER_TLS_CLIENT:
		writer = 1;
		break;
	case LISTEN_PEER_TLS_ANONYMOUS:
	case LISTEN_PEER_PLAIN:
	default:
		break;
	}
	evhttp_connection_set_max_body_size(c->conn, (ev_ssize_t)(writer ? p->writer_body_max
								      : PEERS_READER_BODY_MAX));
}

/* "uid N" for a Unix socket peer, its address for a TCP one. */
static void peer_key(struct peer_conn *c, char out[PEER_KEY_MAX])
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char *address = NULL;
	ev_uint16_t port = 0;
	int fd = bufferevent_getfd(c->bev);

	if (listen_peer_of(c->conn, NULL, 0) == LISTEN_PEER_LOCAL) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred))
			snprintf(out, PEER_KEY_MAX, "uid %u", (unsigned)cred.uid);
		else
			snprintf(out, PEER_KEY_MAX, "uid ?");
		return;
	}
	evhttp_connection_get_peer(c->conn, &address, &port);
	snprintf(out, PEER_KEY_MAX, "%s", address ? address : "?");
}

static void conn_closed(struct evhttp_connection *conn, void *arg)
{
	struct peer_conn *c = arg;
	struct peers *p = c->owner;

	if (c->watch)
		c->watch(conn, c->watch_arg);
	if (c->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl)
			SSL_set_app_data(ssl, NULL);
	}
	list_remove(&p->open, c);
	p->n_open--;
	free(c);
}

/* Free C, still PENDING, and drop our reference to its bufferevent. */
static void pending_free(struct peers *p, struct peer_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	if (ssl)
		SSL_set_app_data(ssl, NULL);
	list_remove(&p->pending, c);
	bufferevent_decref(c->bev);
	free(c);
}

/* Close C, over its peer's limit, before anything is read from it. */
static void refuse(struct peers *p, struct peer_conn *c, struct evhttp_connection *conn)
{
	time_t now = time(NULL);

	METRIC_INC(p->d, connections_refused);
	/* One line a second at most: a peer that opens connections in a loop must not fill the
	 * log; the counter has them all. */
	if (now != p->last_refusal_log) {
		p->last_refusal_log = now;
		fprintf(stderr, "cachepotd: refused a connection from %s: it holds %u already "
			"(--max-connections-per-peer)\n", c->key, p->max_per_peer);
	}
	pending_free(p, c);
	evhttp_connection_free(conn);
}

/* The deferred check of peers.h: runs after the listener's callback that made these
 * connections, before the loop polls again, so before evhttp has read from any of them. */
static void check_pending(evutil_socket_t fd, short what, void *arg)
{
	struct peers *p = arg;
	(void)fd;
	(void)what;

	while (p->pending) {
		struct peer_conn *c = p->pending;
		bufferevent_data_cb readcb = NULL;
		struct evhttp_connection *conn;
		void *cbarg = NULL;
		size_t same = 0;

		bufferevent_getcb(c->bev, &readcb, NULL, NULL, &cbarg);
		conn = cbarg;
		/* No read callback: evhttp gave the connection up (and freed it) already. */
		if (!readcb || !conn || evhttp_connection_get_bufferevent(conn) != c->bev) {
			pending_free(p, c);
			continue;
		}
		c->conn = conn;
		peer_key(c, c->key);
		for (struct peer_conn *o = p->open; o; o = o->next)
			same += strcmp(o->key, c->key) == 0;
		if (same >= p->max_per_peer) {
			refuse(p, c, conn);
			continue;
		}
		list_remove(&p->pending, c);
		bufferevent_decref(c->bev);   /* from here the close callback tells when it goes */
		c->open = 1;
		list_add(&p->open, c);
		p->n_open++;
		evhttp_connection_set_closecb(conn, conn_closed, c);
		apply_rights(c);
	}
}

/* A TLS connection's handshake is done: its certificate (if any) is known, no HTTP byte has
 * been read yet. */
static void tls_info(const SSL *ssl, int where, int ret)
{
	struct peer_conn *c = SSL_get_app_data(ssl);
	(void)ret;

	if ((where & SSL_CB_HANDSHAKE_DONE) && c && c->open)
		apply_rights(c);
}

/* evhttp's bevcb: the bufferevent of a new connection, remembered for check_pending. */
static struct bufferevent *make_bufferevent(struct event_base *base, void *arg)
{
	struct peers_http *h = arg;
	struct peers *p = h->owner;
	struct peer_conn *c = calloc(1, sizeof(*c));
	struct bufferevent *bev;

	if (h->ctx)
		bev = listen_tls_bufferevent_new(base, h->ctx);
	else
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	/* Without a record evhttp goes on with its own bufferevent (plain: the reader limit, not
	 * counted; where TLS was wanted no handshake succeeds). Only when out of memory. */
	if (!c || !bev) {
		free(c);
		if (bev)
			bufferevent_free(bev);
		return NULL;
	}
	c->owner = p;
	c->bev = bev;
	bufferevent_incref(bev);
	if (h->ctx) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		SSL_set_app_data(ssl, c);
		SSL_set_info_callback(ssl, tls_info);
	}
	list_add(&p->pending, c);
	event_active(p->check_event, EV_READ, 0);
	return bev;
}

int peers_new(struct daemon *d, uint64_t writer_body_max, unsigned max_per_peer,
	      struct peers **out)
{
	struct peers *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->d = d;
	p->writer_body_max = writer_body_max;
	p->max_per_peer = max_per_peer;
	p->check_event = event_new(d->base, -1, 0, check_pending, p);
	if (!p->check_event) {
		free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

void peers_serve(struct peers *p, struct evhttp *http, struct ssl_ctx_st *ctx)
{
	struct peers_http *h = calloc(1, sizeof(*h));

	evhttp_set_max_body_size(http, PEERS_READER_BODY_MAX);
	if (!h)
		return;        /* evhttp's own bufferevents: every connection a reader's */
	h->owner = p;
	h->ctx = ctx;
	h->next = p->https;
	p->https = h;
	evhttp_set_bevcb(http, make_bufferevent, h);
}

void peers_watch_close(struct peers *p, struct evhttp_connection *conn,
		       void (*fn)(struct evhttp_connection *conn, void *arg), void *arg)
{
	for (struct peer_conn *c = p->open; c; c = c->next)
		if (c->conn == conn) {
			c->watch = fn;
			c->watch_arg = arg;
			return;
		}
	/* Not one of ours (made by evhttp itself when out of memory): nobody else holds its
	 * close callback. */
	evhttp_connection_set_closecb(conn, fn, arg);
}

size_t peers_count(const struct peers *p)
{
	return p->n_open;
}

void peers_free(struct peers *p)
{
	if (!p)
		return;
	while (p->pending)
		pending_free(p, p->pending);
	/* Every evhttp is freed before this, and with it every open connection (conn_closed). */
	while (p->open) {
		struct peer_conn *c = p->open;
		list_remove(&p->open, c);
		free(c);
	}
	while (p->https) {
		struct peers_http *h = p->https;
		p->https = h->next;
		free(h);
	}
	event_free(p->check_event);
	free(p);
}
