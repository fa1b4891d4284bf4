/* cachepotd's connections: who is at the other end, decided before a request is read, and how
 * many connections each peer holds.
 *
 * Why before. evhttp reads a whole request body into memory before it calls the handler, and
 * libevent 2.1 has no hook for an incoming request between its headers and its body (2.2's
 * evhttp_set_newreqcb is that hook). What evhttp does check before it reads a body is the
 * connection's largest body (evhttp_connection_set_max_body_size): a Content-Length above it is
 * answered 413 and the connection closed, with at most one socket read of the body taken; a
 * chunked body is cut off (413) as soon as its chunks add up past it. So the rights, which
 * belong to the connection and not to the request, are decided per connection as soon as it
 * exists, and set as its body limit:
 *   - every connection starts with PEERS_READER_BODY_MAX, the evhttp default set by
 *     peers_serve (a read has no body; a small refused write still reaches the handler and gets
 *     its 403);
 *   - a Unix socket peer whose credentials are on the allow-lists (peers_local_may_write), and
 *     a TLS peer whose client certificate verified, get WRITER_BODY_MAX: the largest body of any
 *     route (each route checks its own smaller limit once the body is read).
 * The local decision is made when evhttp has made the connection and before its first read
 * (a deferred event, run before the loop polls again); the TLS one when the handshake is done
 * (an OpenSSL info callback), also before any HTTP byte is read. When anything goes wrong on
 * the way the connection keeps the reader limit: the failure refuses, it never allows.
 *
 * How the connection is found. evhttp makes its bufferevent through our bevcb, but creates the
 * connection object around it only afterwards; the deferred event then takes the connection
 * from the bufferevent's callback argument (bufferevent_getcb), which is where evhttp keeps it,
 * and checks that the connection's bufferevent is ours before using it.
 *
 * Per peer. A peer is a uid on the Unix socket and an address on TCP. When a peer already
 * holds MAX_PER_PEER connections, a new one is closed at once, before anything is read from it,
 * and counted (connections_refused): idle connections cost a file descriptor and up to the
 * header limit of memory each.
 *
 * The close callback of every connection evhttp makes belongs to this module (it counts the
 * closes); others watch a close with peers_watch_close.
 *
 * Everything here runs on the loop thread.
 */
#ifndef CACHEPOT_DAEMON_PEERS_H
#define CACHEPOT_DAEMON_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct daemon;
struct evhttp;
struct evhttp_connection;
struct ssl_ctx_st;

#define PEERS_READER_BODY_MAX (64u << 10)   /* a connection that may not write */

struct peers;

/* A table for the connections of every evhttp served with it. D (borrowed, outlives it) gives
 * the allow-lists, the metrics and the event base; WRITER_BODY_MAX is the body limit of a
 * connection that may write, MAX_PER_PEER the connections one peer may hold. On success *OUT is
 * the caller's (peers_free, after every evhttp served with it is freed). 0 or -ENOMEM. */
int peers_new(struct daemon *d, uint64_t writer_body_max, unsigned max_per_peer,
	      struct peers **out) __attribute__((warn_unused_result));
void peers_free(struct peers *p);

/* Make HTTP's connections (plain sockets, or TLS with CTX when not NULL; CTX borrowed, must
 * outlive HTTP) known to P, and set HTTP's default body limit to PEERS_READER_BODY_MAX. */
void peers_serve(struct peers *p, struct evhttp *http, struct ssl_ctx_st *ctx);

/* May the Unix socket peer of FD write? Its uid (SO_PEERCRED) or one of its gids (its primary
 * one, SO_PEERGROUPS) on the allow-lists of D; root and the daemon's own uid always may. 1 or 0
 * (also when the credentials cannot be read); *UID (may be NULL) receives the uid, or -1. */
int peers_local_may_write(const struct daemon *d, int fd, uid_t *uid);

/* Call FN(CONN, ARG) when CONN closes, instead of the previous watcher (FN NULL: none). The
 * same contract as evhttp_connection_set_closecb, whose slot this module holds. */
void peers_watch_close(struct peers *p, struct evhttp_connection *conn,
		       void (*fn)(struct evhttp_connection *conn, void *arg), void *arg);

/* Connections open now (known to P and not refused). */
size_t peers_count(const struct peers *p);

#endif
