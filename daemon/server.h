/* cachepotd's HTTP/1.1 API (libevent evhttp) on a Unix socket, and on --listen (plain TCP) and
 * --listen-tls (TLS) when configured (daemon/listen.h).
 *
 *   POST /v1/blobs/missing     {"blobs":["<hex>",...]} -> {"missing":["<hex>",...]}
 *   PUT  /v1/blobs/<hex>       body = bytes; written, hashed and fsync'd on an upload worker;
 *                              201 / 400 mismatch / 413 too big
 *   GET  /v1/blobs/<hex>       bytes, Cache-Control: public, max-age=31536000, immutable,
 *                              ETag "<hex>"; 304 for If-None-Match naming it
 *   GET  /v1/toolchains/<id>   204 present / 404
 *   PUT  /v1/toolchains/<id>   body = tar of a toolchain tree; id recomputed; 201 (200 present) / 400
 *   POST /v1/jobs              job JSON + "expected_key" -> 200 {"key","manifest"}; 409 key
 *                              mismatch, 422 compile failed, 400 malformed, 424 missing blobs
 *                              {"missing":[...]}, 503 queue full / shutting down, 403 not allowed
 *   GET  /v1/manifests/<key>   signed manifest JSON (immutable, ETag "<key>", 304) / 404
 *   POST /v1/verify/<key>      rebuild a published key from its job record and compare
 *                              (daemon/verify.h): 200 {"result",...}; 404 / 424 / 503; a write
 *   GET  /v1/verify/<key>      the key's verify mark / 404
 *   GET  /metrics              Prometheus text;  GET /v1/status  JSON
 * Errors are JSON {"error": "..."} with Cache-Control: no-store. Reading is open to every peer;
 * writing (PUT, POST /v1/jobs, /v1/blobs/missing, /v1/verify) needs, on the Unix socket, the peer's uid or one of its gids
 * (SO_PEERCRED, SO_PEERGROUPS) on the allow-lists (root and the daemon's own uid always may),
 * over TLS a client certificate that verified against --client-ca, and is never allowed over
 * plain TCP; a refused write is a 403, counted in http_forbidden. The same rights set each
 * connection's body limit before a request is read, and connections per peer are capped
 * (daemon/peers.h).
 */
#ifndef CACHEPOT_DAEMON_SERVER_H
#define CACHEPOT_DAEMON_SERVER_H

#include "daemon/daemon.h"

/* Loop thread, before the loop runs: set up evhttp on D->base, listen on the socket of D->cfg
 * (or on the socket systemd passed, LISTEN_FDS) and start D->cfg->jobs workers. Sets D->server
 * (even on failure: free it with server_stop). 0 or -errno, with a message on stderr. */
int server_start(struct daemon *d) __attribute__((warn_unused_result));

/* Begin a clean shutdown (signal handler): stop accepting, cancel queued jobs, let running ones
 * finish and be answered, then leave the loop. */
void server_begin_shutdown(struct daemon *d);

/* After the loop ended: join the workers, answer what they finished, free D->server and the
 * socket. A no-op when D->server is NULL. */
void server_stop(struct daemon *d);

#endif
