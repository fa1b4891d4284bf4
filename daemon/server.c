/* cachepotd's HTTP API on the loop thread; see server.h. */
#include "config.h"

#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "base/clock.h"
#include "base/io.h"
#include "daemon/etag.h"
#include "daemon/job_run.h"
#include "daemon/listen.h"
#include "daemon/peers.h"
#include "daemon/pool.h"
#include "daemon/toolchain_unpack.h"
#include "daemon/upload.h"
#include "daemon/verify.h"
#include "daemon/store_gc.h"
#include "fs/store.h"
#include "hash/digest.h"
#include "hash/job.h"

#define JSON_BODY_MAX (16u << 20)     /* a job or a missing-blobs query */
#define MISSING_QUERY_MAX 200000      /* hashes in one missing-blobs query (67 bytes each) */
#define IMMUTABLE "public, max-age=31536000, immutable"
#define UPLOAD_WORKERS 2             /* threads that write, hash and fsync uploaded blobs */

/* The loop thread's state; every field is touched by the loop thread only. */
struct server {
	struct evhttp *http;              /* the Unix socket and --listen */
	struct evconnlistener *listener;  /* owned by HTTP once bound */
	struct evconnlistener *tcp_listener;   /* --listen, owned by HTTP; or NULL */
	struct evhttp *https;             /* --listen-tls, or NULL */
	struct evconnlistener *tls_listener;   /* owned by HTTPS */
	struct ssl_ctx_st *tls_context;   /* outlives HTTPS */
	struct event *done_event;         /* made active by workers: pool_drain_done */
	struct pool *pool;                /* jobs and toolchain unpacking: --jobs workers */
	struct pool *upload_pool;         /* blob uploads, never queued behind a compile */
	struct inflight *inflight;        /* jobs queued or running, by key */
	struct peers *peers;              /* every connection of HTTP and HTTPS */
	struct event *unused_timer;       /* toolchain_retire_unused, every few minutes */
	struct upload_table uploads;      /* uploads in parts in progress */
	struct event *upload_timer;       /* upload_sweep of idle ones */
	struct verify_task *verifies;     /* checks waiting or on the pool, oldest first */
	unsigned verify_waiting;          /* of those, not yet handed to the pool */
	unsigned verify_running;          /* of those, on the pool */
	uint64_t verify_rng;              /* verify_sample_draw's state */
	int removing_retired;             /* a task removes retired toolchains */
	struct event *gc_timer;           /* the collection under --max-size, every --gc-interval */
	int collecting;                   /* a collection is on the pool (one at a time) */
	uint64_t store_bytes;             /* the store's size after the last collection, or 0 */
	int stopping;
};

/* A request waiting for a worker's answer. The connection's close callback clears REQ when the
 * client goes away first, so the answer is then dropped instead of sent to a freed request. */
struct waiter {
	struct waiter *next;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
};

/* A job in flight (queued or running), the unit of coalescing: every waiter of the same key is
 * answered from the one compile. Lives in the server's INFLIGHT list from intake until FINISH. */
struct inflight {
	struct task task;
	struct inflight *next;
	struct job job;
	char key[DIGEST_HEX_SIZE];
	struct waiter *waiters;
	int status;
	json_t *body;
};

/* A check of a published key (daemon/verify.h): waits in the server's VERIFIES until a worker
 * is idle (verify_pump), then runs on the pool; its FINISH answers WAITERS (the on-demand
 * requests; none for a sampled hit) and frees it. */
struct verify_task {
	struct task task;
	struct verify_task *next;
	struct job job;
	char key[DIGEST_HEX_SIZE];
	struct waiter *waiters;
	int submitted;           /* on the pool */
	json_t *body;
};

/* One body of an upload (upload.h): the whole of a small one, or one part of a large one. It is
 * written (and a blob hashed) on an upload worker, never on the loop thread; the part that
 * completes a blob commits it, the one that completes a toolchain archive unpacks it. */
struct part_task {
	struct task task;
	struct waiter *waiter;
	struct upload *up;       /* BUSY while the task holds it; a whole-body one is not in the table */
	struct evbuffer *body;   /* moved out of the request */
	size_t len;
	int last;                /* this body completes the upload */
	uint64_t seq;            /* names the toolchain's temporary tree */
	unsigned char actual[DIGEST_SIZE];
	int ret;
	char err[512];
};

static const char *reason_of(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 424: return "Failed Dependency";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Internal Server Error";
	}
}

/* Send BODY (borrowed; NULL for none) as the answer to REQ. */
static void send_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	/* No cache in front of the worker may keep a refusal or a miss: a key missing now may be
	 * published a second later. */
	if (code >= 400) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_remove_header(h, "ETag");
		evhttp_remove_header(h, "Cache-Control");
		evhttp_add_header(h, "Cache-Control", "no-store");
	}
	if (text) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/json");
		free(text);
	}
	evhttp_send_reply(req, code, reason_of(code), NULL);
}

static void send_error(struct evhttp_request *req, int code, const char *msg)
{
	json_t *body = json_pack("{s:s}", "error", msg);
	send_json(req, code, body);
	json_decref(body);
}

static void waiter_closed(struct evhttp_connection *conn, void *arg)
{
	struct waiter *w = arg;
	(void)conn;
	w->req = NULL;
	w->conn = NULL;
}

static struct waiter *waiter_new(struct daemon *d, struct evhttp_request *req)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->req = req;
	w->conn = evhttp_request_get_connection(req);
	if (w->conn)
		peers_watch_close(d->server->peers, w->conn, waiter_closed, w);
	return w;
}

/* Forget W without answering it. */
static void waiter_drop(struct daemon *d, struct waiter *w)
{
	if (w->req && w->conn)
		peers_watch_close(d->server->peers, w->conn, NULL, NULL);
	free(w);
}

/* Answer W (if its client is still there) and free it. */
static void waiter_answer(struct daemon *d, struct waiter *w, int code, json_t *body)
{
	if (w->req) {
		if (w->conn)
			peers_watch_close(d->server->peers, w->conn, NULL, NULL);
		send_json(w->req, code, body);
	}
	free(w);
}

/* May this request write (listen.h says who may)? If not, the 403 is sent and counted. */
static int require_writer(struct daemon *d, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	char who[400];
	uid_t uid;

	switch (listen_peer_of(conn, who, sizeof(who))) {
	case LISTEN_PEER_TLS_CLIENT:
		return 1;
	case LISTEN_PEER_LOCAL:
		if (peers_local_may_write(d, bev ? bufferevent_getfd(bev) : -1, &uid))
			return 1;
		METRIC_INC(d, http_forbidden);
		fprintf(stderr, "cachepotd: refused a write from uid %ld (not on the allow-list)\n",
			(long)(int)uid);
		send_error(req, 403, "this uid/gid may not write to the cache");
		return 0;
	case LISTEN_PEER_TLS_ANONYMOUS:
		METRIC_INC(d, http_forbidden);
		fprintf(stderr, "cachepotd: refused a write over TLS without a client certificate "
			"from %s\n", who);
		send_error(req, 403, "writing needs a client certificate signed by the worker's CA");
		return 0;
	case LISTEN_PEER_PLAIN:
	default:
		METRIC_INC(d, http_forbidden);
		fprintf(stderr, "cachepotd: refused a write over plain HTTP from %s\n", who);
		send_error(req, 403, "writing needs TLS with a client certificate (--listen-tls)");
		return 0;
	}
}

/* The request body as JSON (bounded); on failure the 400/413 answer has been sent. */
static json_t *body_json(struct daemon *d, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_error_t jerr;
	unsigned char *data;
	json_t *json;
	char msg[300];

	if (len > JSON_BODY_MAX) {
		METRIC_INC(d, http_too_large);
		send_error(req, 413, "JSON body too large");
		return NULL;
	}
	data = evbuffer_pullup(in, (ssize_t)len);
	json = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json) {
		METRIC_INC(d, http_bad_requests);
		snprintf(msg, sizeof(msg), "malformed JSON: %s (line %d)", jerr.text, jerr.line);
		send_error(req, 400, msg);
	}
	return json;
}

/* The caching headers of an immutable answer named TAG; when the request's If-None-Match
 * names it, answer 304 (no body) and return 1. */
static int immutable_answer(struct evhttp_request *req, const char *tag)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char etag[DIGEST_HEX_SIZE + 2];

	snprintf(etag, sizeof(etag), "\"%s\"", tag);
	evhttp_add_header(h, "Cache-Control", IMMUTABLE);
	evhttp_add_header(h, "ETag", etag);
	if (!etag_matches(evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match"),
			  tag))
		return 0;
	evhttp_send_reply(req, 304, "Not Modified", NULL);
	return 1;
}

/* ---- blobs ---- */

static void blob_get(struct daemon *d, struct evhttp_request *req, const char *hex)
{
	unsigned char sha[DIGEST_SIZE];
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct stat st;
	int fd, published;

	if (digest_from_hex(hex, sha) < 0 || strlen(hex) != 64) {
		send_error(req, 400, "a blob name is 64 lowercase hex digits");
		return;
	}
	/* Only blobs a published manifest names: an uploaded input (a client's sources) is in
	 * cas/ for the daemon's jobs, not for anyone who can guess its hash (fs/store.h). */
	published = store_blob_published(d->store, sha);
	fd = published > 0 ? store_open_blob(d->store, sha) : published == 0 ? -ENOENT : published;
	if (fd < 0) {
		send_error(req, fd == -ENOENT ? 404 : 500, fd == -ENOENT ? "no such blob" : strerror(-fd));
		return;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		send_error(req, 500, strerror(errno));
		return;
	}
	if (immutable_answer(req, hex)) {
		close(fd);
		return;
	}
	evhttp_add_header(h, "Content-Type", "application/octet-stream");
	/* evbuffer_add_file owns FD from here (sendfile where possible). */
	if (evbuffer_add_file(evhttp_request_get_output_buffer(req), fd, 0, st.st_size) < 0) {
		send_error(req, 500, "cannot send the blob");
		return;
	}
	evhttp_send_reply(req, 200, "OK", NULL);
}

/* Append the hex name of SHA to the JSON array MISSING when the store lacks that blob.
 * 0, or -errno when presence could not be told. */
static int note_if_missing(struct daemon *d, const unsigned char sha[DIGEST_SIZE], json_t *missing)
{
	char hex[DIGEST_HEX_SIZE];
	int r = store_has_blob(d->store, sha);

	if (r != 0)
		return r < 0 ? r : 0;
	digest_to_hex(sha, hex);
	return json_array_append_new(missing, json_string(hex)) < 0 ? -ENOMEM : 0;
}

/* Which of a job's input blobs the daemon lacks: the first step of an upload, so a writer's
 * question only. Answered to anyone, it would tell whether some client uploaded given bytes. */
static void blobs_missing(struct daemon *d, struct evhttp_request *req)
{
	json_t *query, *list, *missing, *v;
	size_t i;

	if (!require_writer(d, req))
		return;
	query = body_json(d, req);
	if (!query)
		return;
	list = json_object_get(query, "blobs");
	if (!json_is_array(list) || json_array_size(list) > MISSING_QUERY_MAX) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "{\"blobs\":[\"<hex>\",...]} expected");
		json_decref(query);
		return;
	}
	missing = json_array();
	json_array_foreach(list, i, v) {
		unsigned char sha[DIGEST_SIZE];
		const char *hex = json_string_value(v);
		int r;
		if (!hex || !digest_hex_valid(hex) || digest_from_hex(hex, sha) < 0) {
			METRIC_INC(d, http_bad_requests);
			send_error(req, 400, "a blob name is 64 lowercase hex digits");
			goto out;
		}
		r = note_if_missing(d, sha, missing);
		if (r < 0) {
			send_error(req, 500, strerror(-r));
			goto out;
		}
	}
	{
		json_t *body = json_pack("{s:O}", "missing", missing);
		send_json(req, 200, body);
		json_decref(body);
	}
out:
	json_decref(missing);
	json_decref(query);
}

/* ---- toolchains ---- */

static int toolchain_present(struct daemon *d, const char *id)
{
	struct stat st;
	return fstatat(store_toolchains_fd(d->trees), id, &st, AT_SYMLINK_NOFOLLOW) == 0
	       && S_ISDIR(st.st_mode);
}

/* ---- uploads: blobs and toolchain archives, whole or in parts (upload.h) ---- */

/* The archive so far of a toolchain upload: an unnamed file beside the toolchains (an O_TMPFILE,
 * or where the file system has none a TMP_PREFIX name removed at once; toolchain_sweep removes
 * one a killed daemon left). */
static int archive_file_new(int toolchains_fd, uint64_t seq)
{
	char name[64];
	int fd = openat(toolchains_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : -errno;
	snprintf(name, sizeof(name), ".tmp-upload-%llu-%d", (unsigned long long)seq, (int)getpid());
	fd = openat(toolchains_fd, name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlinkat(toolchains_fd, name, 0);
	return fd;
}

static void part_run(struct daemon *d, struct task *t)
{
	struct part_task *pt = (struct part_task *)t;
	struct upload *u = pt->up;
	int toolchains_fd = store_toolchains_fd(d->trees);
	int ret = 0;

	if (u->kind == UPLOAD_BLOB && !u->blob)
		ret = store_blob_begin(d->store, &u->blob);
	else if (u->kind == UPLOAD_TOOLCHAIN && u->fd < 0 && (ret = archive_file_new(toolchains_fd, pt->seq)) >= 0) {
		u->fd = ret;
		ret = 0;
	}
	while (ret == 0 && evbuffer_get_length(pt->body) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(pt->body, -1, NULL, &v, 1) < 1)
			break;
		ret = u->kind == UPLOAD_BLOB ? store_blob_write(u->blob, v.iov_base, v.iov_len)
					     : io_write_all(u->fd, v.iov_base, v.iov_len);
		evbuffer_drain(pt->body, v.iov_len);
	}
	if (ret == 0 && pt->last) {
		if (u->kind == UPLOAD_BLOB) {
			unsigned char expect[DIGEST_SIZE];
			ret = digest_from_hex(u->name, expect);
			if (ret == 0)
				ret = store_blob_commit(u->blob, expect, pt->actual);
			else
				store_blob_abort(u->blob);
			u->blob = NULL;    /* commit and abort free it */
		} else if (lseek(u->fd, 0, SEEK_SET) < 0) {
			ret = -errno;
		} else {
			ret = toolchain_unpack_fd(toolchains_fd, u->fd, u->name, pt->seq, pt->err,
						  sizeof(pt->err));
		}
	}
	if (ret < 0 && !pt->err[0])
		snprintf(pt->err, sizeof(pt->err), "%s", strerror(-ret));
	pt->ret = ret;
}

/* The answer to the body that completed upload U, or failed it (PT->ret). */
static int part_outcome(struct daemon *d, struct part_task *pt, json_t **body)
{
	struct upload *u = pt->up;
	char msg[200];

	if (u->kind == UPLOAD_BLOB) {
		if (pt->ret == -EBADMSG) {
			char got[DIGEST_HEX_SIZE];
			METRIC_INC(d, blobs_rejected);
			digest_to_hex(pt->actual, got);
			snprintf(msg, sizeof(msg), "the bytes do not match the name (their sha256 is %s)", got);
			*body = json_pack("{s:s}", "error", msg);
			return 400;
		}
		if (pt->ret < 0) {
			*body = json_pack("{s:s}", "error", pt->err);
			return pt->ret == -ENOSPC ? 507 : 500;
		}
		METRIC_INC(d, blobs_uploaded);
		METRIC_ADD(d, blob_bytes_uploaded, u->total);
		*body = json_pack("{s:s}", "sha256", u->name);
		return 201;
	}
	if (pt->ret >= 0) {
		if (pt->ret == 0) {
			METRIC_INC(d, toolchains_uploaded);
			fprintf(stderr, "cachepotd: toolchain %s added\n", u->name);
		}
		*body = json_pack("{s:s}", "id", u->name);
		return pt->ret == 0 ? 201 : 200;
	}
	METRIC_INC(d, toolchains_rejected);
	fprintf(stderr, "cachepotd: toolchain %s refused: %s\n", u->name, pt->err);
	*body = json_pack("{s:s}", "error", pt->err);
	if (pt->ret == -EFBIG) {
		METRIC_INC(d, http_too_large);
		return 413;
	}
	return pt->ret == -EINVAL || pt->ret == -EBADMSG ? 400 : pt->ret == -ENOSPC ? 507 : 500;
}

static void part_finish(struct daemon *d, struct task *t, int cancelled)
{
	struct part_task *pt = (struct part_task *)t;
	struct upload *u = pt->up;
	int whole = u->token[0] == '\0', code, done = 1;
	json_t *body;

	u->busy = 0;
	if (cancelled) {
		code = 503;
		body = json_pack("{s:s}", "error", "shutting down");
	} else if (pt->ret >= 0 && !pt->last) {
		u->received += pt->len;
		u->last_us = monotonic_us();
		code = 202;
		body = json_pack("{s:I}", "received", (json_int_t)u->received);
		done = 0;
	} else {
		code = part_outcome(d, pt, &body);
	}
	if (done)
		upload_drop(whole ? NULL : &d->server->uploads, u);
	waiter_answer(d, pt->waiter, code, body);
	json_decref(body);
	evbuffer_free(pt->body);
	free(pt);
}

/* 1 when the store has the blob named HEX (checked), 0, or -errno. */
static int blob_present(struct daemon *d, const char *hex)
{
	unsigned char sha[DIGEST_SIZE];
	int ret = digest_from_hex(hex, sha);
	return ret < 0 ? ret : store_has_blob(d->store, sha);
}

/* A 409: the part does not continue the upload, which has RECEIVED bytes. */
static void send_conflict(struct evhttp_request *req, const char *msg, uint64_t received)
{
	json_t *body = json_pack("{s:s, s:I}", "error", msg, "received", (json_int_t)received);
	send_json(req, 409, body);
	json_decref(body);
}

/* PUT of a blob or a toolchain archive NAME: a whole body, or a part (upload.h). */
static void upload_put(struct daemon *d, struct evhttp_request *req, enum upload_kind kind,
		       const char *name)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	size_t len = evbuffer_get_length(in);
	uint64_t limit = kind == UPLOAD_BLOB ? d->cfg->max_blob_bytes : d->cfg->max_upload_bytes;
	struct upload_part_params pp;
	struct upload *u = NULL;
	struct part_task *pt;
	int part, ret;

	if (!require_writer(d, req))
		return;
	if (!digest_hex_valid(name)) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, kind == UPLOAD_BLOB ? "a blob name is 64 lowercase hex digits"
							 : "a toolchain id is 64 lowercase hex digits");
		return;
	}
	part = upload_part_params_parse(uri ? evhttp_uri_get_query(uri) : NULL, &pp);
	if (part < 0) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "a part of an upload is named by upload=<32 lowercase hex>&"
			   "offset=<bytes before it>&total=<bytes in all>, offset below total");
		return;
	}
	if (len > UPLOAD_PART_MAX || (part ? pp.total : len) > limit) {
		char msg[200];
		METRIC_INC(d, http_too_large);
		if (len > UPLOAD_PART_MAX)
			snprintf(msg, sizeof(msg), "a body is at most %u bytes: send a larger upload in "
				 "parts (?upload=&offset=&total=)", UPLOAD_PART_MAX);
		else
			snprintf(msg, sizeof(msg), "%s larger than the daemon accepts (%s %llu)",
				 kind == UPLOAD_BLOB ? "a blob" : "a toolchain archive",
				 kind == UPLOAD_BLOB ? "--max-blob-bytes" : "--max-upload-bytes",
				 (unsigned long long)limit);
		send_error(req, 413, msg);
		return;
	}
	if (part)
		u = upload_find(&d->server->uploads, kind, name, pp.token);
	/* Nothing to send: the daemon has it (another client finished first). */
	if ((kind == UPLOAD_TOOLCHAIN && toolchain_present(d, name))
	    || (kind == UPLOAD_BLOB && part && pp.offset == 0 && !u
		&& blob_present(d, name) == 1)) {
		json_t *body = json_pack("{s:s}", kind == UPLOAD_BLOB ? "sha256" : "id", name);
		if (u && !u->busy)
			upload_drop(&d->server->uploads, u);
		send_json(req, 200, body);
		json_decref(body);
		return;
	}
	if (!part) {
		ret = upload_start(NULL, kind, name, "", len, &u);
	} else if (len == 0 || pp.offset + len > pp.total) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "a part holds at least one byte and no more than the rest of the "
			   "upload");
		return;
	} else if (!u) {
		if (pp.offset != 0) {
			send_conflict(req, "no such upload in progress (gone idle, or never started): "
				      "start again at offset 0", 0);
			return;
		}
		ret = upload_start(&d->server->uploads, kind, name, pp.token, pp.total, &u);
	} else if (u->total != pp.total) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "total differs from the upload's");
		return;
	} else if (u->busy || pp.offset != u->received) {
		send_conflict(req, u->busy ? "the upload's previous part is still being written"
				  : "the part does not start where the upload stands", u->received);
		return;
	} else {
		ret = 0;
	}
	if (ret < 0) {
		send_error(req, ret == -EAGAIN ? 503 : 500,
			   ret == -EAGAIN ? "too many uploads in progress" : strerror(-ret));
		return;
	}
	pt = calloc(1, sizeof(*pt));
	if (pt)
		pt->body = evbuffer_new();
	if (pt && pt->body)
		pt->waiter = waiter_new(d, req);
	if (!pt || !pt->waiter) {
		if (pt && pt->body)
			evbuffer_free(pt->body);
		free(pt);
		if (!part || u->received == 0)
			upload_drop(part ? &d->server->uploads : NULL, u);
		send_error(req, 500, "out of memory");
		return;
	}
	pt->task.run = part_run;
	pt->task.finish = part_finish;
	pt->up = u;
	pt->len = len;
	pt->last = !part || pp.offset + len == pp.total;
	pt->seq = __atomic_add_fetch(&d->seq, 1, __ATOMIC_RELAXED);
	u->busy = 1;
	/* Move (not copy) the body's chain into the task: the worker reads it, nobody else does. */
	evbuffer_add_buffer(pt->body, in);
	/* Forced: the body is already here, and the upload workers run nothing else. */
	if (pool_submit(d->server->upload_pool, &pt->task, 1) < 0)
		part_finish(d, &pt->task, 1);
}
/* Removing the trees of unused toolchains moved aside (slow: a worker's). */
static void retired_run(struct daemon *d, struct task *t)
{
	(void)t;
	toolchain_remove_retired(store_toolchains_fd(d->trees));
}

static void retired_finish(struct daemon *d, struct task *t, int cancelled)
{
	(void)cancelled;       /* the next start removes them */
	d->server->removing_retired = 0;
	free(t);
}

/* The periodic sweep of toolchains uploaded and never named by a job. */
static void unused_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct task *t;
	int moved;
	(void)fd;
	(void)what;

	if (d->server->stopping)
		return;
	moved = toolchain_retire_unused(store_toolchains_fd(d->trees), time(NULL),
					d->cfg->unused_toolchain_seconds);
	if (moved <= 0 || d->server->removing_retired || !(t = calloc(1, sizeof(*t))))
		return;
	t->run = retired_run;
	t->finish = retired_finish;
	if (pool_submit(d->server->pool, t, 1) < 0) {
		free(t);
		return;
	}
	d->server->removing_retired = 1;
}

/* ---- jobs ---- */

static void inflight_unlink(struct daemon *d, struct inflight *job)
{
	for (struct inflight **p = &d->server->inflight; *p; p = &(*p)->next)
		if (*p == job) {
			*p = job->next;
			return;
		}
}

static void job_task_run(struct daemon *d, struct task *t)
{
	struct inflight *job = (struct inflight *)t;

	job->status = job_outcome_status(job_execute(d, &job->job, job->key, &job->body));
}

static void job_task_finish(struct daemon *d, struct task *t, int cancelled)
{
	struct inflight *job = (struct inflight *)t;
	unsigned n = 0;

	inflight_unlink(d, job);
	if (cancelled) {
		METRIC_INC(d, jobs_cancelled);
		json_decref(job->body);
		job->status = 503;
		job->body = json_pack("{s:s}", "error", "shutting down");
	}
	while (job->waiters) {
		struct waiter *w = job->waiters;
		job->waiters = w->next;
		waiter_answer(d, w, job->status, job->body);
		n++;
	}
	fprintf(stderr, "cachepotd: job %.16s: %d %s (%u waiter%s)\n", job->key, job->status,
		reason_of(job->status), n, n == 1 ? "" : "s");
	json_decref(job->body);
	job_release(&job->job);
	free(job);
}

/* Parse the job JSON of REQ into JOB and check that its key is the "expected_key" the client
 * sent; JOB->key is then that key. 0, or an HTTP status whose answer has been sent. */
static int job_intake(struct daemon *d, struct evhttp_request *req, json_t *json,
		      struct inflight *job)
{
	const char *expected = json_string_value(json_object_get(json, "expected_key"));
	unsigned char key[DIGEST_SIZE];
	char key_hex[DIGEST_HEX_SIZE], err[256];
	json_t *body;

	if (!expected || !digest_hex_valid(expected)) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "expected_key: 64 lowercase hex digits expected");
		return 400;
	}
	memcpy(job->key, expected, DIGEST_HEX_SIZE);
	json_object_del(json, "expected_key");
	if (job_from_json(json, &job->job, err, sizeof(err)) < 0) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, err);
		return 400;
	}
	if (job_key(&job->job, key, NULL) < 0) {
		send_error(req, 500, "out of memory");
		return 500;
	}
	digest_to_hex(key, key_hex);
	if (strcmp(key_hex, job->key) != 0) {
		METRIC_INC(d, jobs_key_mismatch);
		fprintf(stderr, "cachepotd: refused a job: key %.16s expected, %.16s computed\n",
			job->key, key_hex);
		body = json_pack("{s:s, s:s, s:s}", "error", "the job's key is not the expected key",
				 "key", key_hex, "expected_key", job->key);
		send_json(req, 409, body);
		json_decref(body);
		return 409;
	}
	return 0;
}

/* Add REQ to the waiters of the job of KEY_HEX in flight, if there is one. 1 when added, 0 when
 * no such job is in flight, -ENOMEM. */
static int join_inflight(struct daemon *d, struct evhttp_request *req, const char key_hex[65])
{
	for (struct inflight *f = d->server->inflight; f; f = f->next) {
		struct waiter *w;
		if (strcmp(f->key, key_hex) != 0)
			continue;
		w = waiter_new(d, req);
		if (!w)
			return -ENOMEM;
		w->next = f->waiters;
		f->waiters = w;
		return 1;
	}
	return 0;
}

/* Everything the sandbox of JOB will see must be here: the toolchain and every input blob.
 * 0 when it is, or an HTTP status (424 listing what is missing) whose answer has been sent. */
static int job_inputs_present(struct daemon *d, struct evhttp_request *req, const struct job *job)
{
	json_t *missing = json_array(), *body;
	int have_toolchain, have_link, ret;

	if (!missing) {
		send_error(req, 500, "out of memory");
		return 500;
	}
	for (size_t i = 0; i < job->n_inputs; i++) {
		ret = note_if_missing(d, job->inputs[i].sha256, missing);
		if (ret < 0) {
			send_error(req, 500, strerror(-ret));
			json_decref(missing);
			return 500;
		}
	}
	have_toolchain = toolchain_present(d, job->toolchain);
	have_link = !job->link_toolchain[0] || toolchain_present(d, job->link_toolchain);
	/* Named by a job: kept from now on (toolchain_unpack.h). Here, on the loop thread, so the
	 * sweep of unused ones cannot take it between now and the run. */
	if (have_toolchain && (ret = toolchain_mark_used(store_toolchains_fd(d->trees),
							 job->toolchain)) < 0)
		fprintf(stderr, "cachepotd: toolchain %s: removing its unused mark: %s\n",
			job->toolchain, strerror(-ret));
	if (job->link_toolchain[0] && have_link
	    && (ret = toolchain_mark_used(store_toolchains_fd(d->trees), job->link_toolchain)) < 0)
		fprintf(stderr, "cachepotd: toolchain %s: removing its unused mark: %s\n",
			job->link_toolchain, strerror(-ret));
	if (json_array_size(missing) == 0 && have_toolchain && have_link) {
		json_decref(missing);
		return 0;
	}
	METRIC_INC(d, jobs_missing_blobs);
	body = json_pack("{s:s, s:O}", "error", "missing blobs", "missing", missing);
	if (body && !have_toolchain)
		json_object_set_new(body, "missing_toolchain", json_string(job->toolchain));
	if (body && !have_link)
		json_object_set_new(body, "missing_link_toolchain", json_string(job->link_toolchain));
	send_json(req, 424, body);
	json_decref(body);
	json_decref(missing);
	return 424;
}

/* Queue JOB (which the pool then owns) with REQ as its first waiter. 0, or an HTTP status whose
 * answer has been sent (JOB is still the caller's). */
static int job_queue(struct daemon *d, struct evhttp_request *req, struct inflight *job)
{
	struct waiter *w = waiter_new(d, req);
	int ret;

	if (!w) {
		send_error(req, 500, "out of memory");
		return 500;
	}
	job->task.run = job_task_run;
	job->task.finish = job_task_finish;
	ret = pool_submit(d->server->pool, &job->task, 0);
	if (ret < 0) {
		waiter_drop(d, w);
		METRIC_INC(d, jobs_queue_full);
		send_error(req, 503, ret == -EAGAIN ? "the job queue is full, retry later"
						     : "shutting down");
		return 503;
	}
	job->waiters = w;
	job->next = d->server->inflight;
	d->server->inflight = job;
	return 0;
}

/* ---- rebuild checks (daemon/verify.h) ---- */

static struct verify_task *verify_find(struct daemon *d, const char key_hex[65])
{
	for (struct verify_task *v = d->server->verifies; v; v = v->next)
		if (strcmp(v->key, key_hex) == 0)
			return v;
	return NULL;
}

static void verify_unlink(struct daemon *d, struct verify_task *v)
{
	for (struct verify_task **p = &d->server->verifies; *p; p = &(*p)->next)
		if (*p == v) {
			*p = v->next;
			return;
		}
}

static void verify_task_run(struct daemon *d, struct task *t)
{
	struct verify_task *v = (struct verify_task *)t;

	verify_run(d, &v->job, v->key, &v->body);
}

/* Answer V's waiters (CODE with BODY, or with V's answer when BODY is NULL), unlink V and free
 * it. */
static void verify_task_end(struct daemon *d, struct verify_task *v, int code, json_t *body)
{
	verify_unlink(d, v);
	if (v->submitted)
		d->server->verify_running--;
	else
		d->server->verify_waiting--;
	if (!body && !v->body)
		code = 500, body = json_pack("{s:s}", "error", "out of memory");
	else if (!body)
		body = json_incref(v->body);
	else
		json_incref(body);
	while (v->waiters) {
		struct waiter *w = v->waiters;
		v->waiters = w->next;
		waiter_answer(d, w, code, body);
	}
	json_decref(body);
	json_decref(v->body);
	job_release(&v->job);
	free(v);
}

static void verify_task_finish(struct daemon *d, struct task *t, int cancelled)
{
	struct verify_task *v = (struct verify_task *)t;
	json_t *body = cancelled ? json_pack("{s:s}", "error", "shutting down") : NULL;

	verify_task_end(d, v, cancelled ? 503 : 200, body);
	json_decref(body);
}

/* Hand waiting checks to the pool while fewer than VERIFY_RUNNING_MAX run there, no job waits
 * in its queue and a worker is idle: a check starts only on a worker no job wants, and a job
 * that comes meanwhile waits behind one check at most, never behind the queue of them. */
static void verify_pump(struct daemon *d)
{
	struct server *s = d->server;

	while (!s->stopping && s->verify_waiting > 0 && s->verify_running < VERIFY_RUNNING_MAX) {
		struct verify_task *v;
		size_t queued, running;
		pool_counts(s->pool, &queued, &running);
		if (queued > 0 || running >= d->cfg->jobs)
			return;
		for (v = s->verifies; v && v->submitted; v = v->next)
			;
		if (!v || pool_submit(s->pool, &v->task, 0) < 0)
			return;
		v->submitted = 1;
		s->verify_waiting--;
		s->verify_running++;
	}
}

/* Queue a check of KEY_HEX rebuilding JOB (moved into the check: *JOB is zeroed), with W as
 * its first waiter (or none). 0, -EAGAIN when VERIFY_QUEUE_MAX checks wait already, -ENOMEM. */
static int verify_enqueue(struct daemon *d, struct job *job, const char key_hex[65],
			  struct waiter *w)
{
	struct verify_task *v, **tail;

	if (d->server->verify_waiting >= VERIFY_QUEUE_MAX)
		return -EAGAIN;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->task.run = verify_task_run;
	v->task.finish = verify_task_finish;
	v->job = *job;
	memset(job, 0, sizeof(*job));
	memcpy(v->key, key_hex, DIGEST_HEX_SIZE);
	v->waiters = w;
	for (tail = &d->server->verifies; *tail; tail = &(*tail)->next)
		;
	*tail = v;
	d->server->verify_waiting++;
	verify_pump(d);
	return 0;
}

/* A hit of KEY_HEX was just answered: check it with the job the client sent (JOB, taken when
 * drawn) for a fraction --verify-sample of hits. */
static void verify_sample_hit(struct daemon *d, struct job *job, const char key_hex[65])
{
	if (!verify_sample_draw(&d->server->verify_rng, d->cfg->verify_sample) || d->server->stopping)
		return;
	METRIC_INC(d, verify_sampled);
	if (verify_find(d, key_hex))
		return;    /* the check already waiting covers this hit */
	if (verify_enqueue(d, job, key_hex, NULL) < 0)
		METRIC_INC(d, verify_dropped);
}

/* Drop the checks still waiting (shutdown): their requests get a 503. */
static void verify_drop_waiting(struct daemon *d)
{
	struct verify_task *v = d->server->verifies, *next;
	json_t *body = json_pack("{s:s}", "error", "shutting down");

	for (; v; v = next) {
		next = v->next;
		if (!v->submitted)
			verify_task_end(d, v, 503, body);
	}
	json_decref(body);
}

/* POST /v1/verify/<key>: rebuild a published key from its job record and compare. A write: it
 * costs a whole compile. Bounded: a key already being checked is joined, and the queue of
 * VERIFY_QUEUE_MAX is shared with sampling; over it, 503. */
static void verify_post(struct daemon *d, struct evhttp_request *req, const char *key)
{
	struct job job = { 0 };
	struct verify_task *v;
	struct waiter *w;
	json_error_t jerr;
	json_t *json = NULL;
	char *text = NULL, err[256];
	size_t len = 0;
	int ret;

	if (!require_writer(d, req))
		return;
	if (d->server->stopping) {
		send_error(req, 503, "shutting down");
		return;
	}
	if (!digest_hex_valid(key)) {
		METRIC_INC(d, http_bad_requests);
		send_error(req, 400, "a key is 64 lowercase hex digits");
		return;
	}
	ret = store_get_manifest(d->store, key, &text, &len);
	free(text);
	text = NULL;
	if (ret < 0) {
		send_error(req, ret == -ENOENT ? 404 : 500, ret == -ENOENT ? "not published" : strerror(-ret));
		return;
	}
	v = verify_find(d, key);
	if (v) {
		w = waiter_new(d, req);
		if (!w) {
			send_error(req, 500, "out of memory");
			return;
		}
		w->next = v->waiters;
		v->waiters = w;
		return;
	}
	if (d->server->verify_waiting >= VERIFY_QUEUE_MAX) {
		send_error(req, 503, "the verify queue is full, retry later");
		return;
	}
	ret = store_get_job_record(d->store, key, &text, &len);
	if (ret == -ENOENT) {
		send_error(req, 404, "no job record for this key (published before this daemon kept "
			   "them): submitting its job again checks it when --verify-sample draws it");
		return;
	}
	if (ret == 0 && !(json = json_loadb(text, len, 0, &jerr)))
		ret = -EBADMSG;
	if (ret == 0 && job_from_json(json, &job, err, sizeof(err)) < 0)
		ret = -EBADMSG;
	free(text);
	json_decref(json);
	if (ret < 0) {
		send_error(req, 500, ret == -EBADMSG ? "the job record is unreadable" : strerror(-ret));
		return;
	}
	/* Its inputs must still be here (a 424 names those that are not). */
	if (job_inputs_present(d, req, &job) != 0) {
		job_release(&job);
		return;
	}
	w = waiter_new(d, req);
	ret = w ? verify_enqueue(d, &job, key, w) : -ENOMEM;
	if (ret < 0) {
		if (w)
			waiter_drop(d, w);
		job_release(&job);
		send_error(req, 500, "out of memory");
	}
}

/* GET /v1/verify/<key>: the key's verify mark, when a rebuild differed. Open to every reader,
 * like the manifest it is about; not cached (a mark may come later). */
static void verify_get(struct daemon *d, struct evhttp_request *req, const char *key)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (!digest_hex_valid(key)) {
		send_error(req, 400, "a key is 64 lowercase hex digits");
		return;
	}
	ret = store_get_verify_mark(d->store, key, &text, &len);
	if (ret < 0) {
		send_error(req, ret == -ENOENT ? 404 : 500, ret == -ENOENT ? "not marked" : strerror(-ret));
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, len);
	free(text);
	evhttp_send_reply(req, 200, "OK", NULL);
}

/* POST /v1/jobs: answer from the store when published, join the identical job in flight, or
 * queue a new one once every input is here. */
static void job_post(struct daemon *d, struct evhttp_request *req)
{
	struct inflight *job = NULL;
	json_t *json, *body = NULL;
	int ret;

	if (!require_writer(d, req))
		return;
	if (d->server->stopping) {
		send_error(req, 503, "shutting down");
		return;
	}
	json = body_json(d, req);
	if (!json)
		return;
	METRIC_INC(d, jobs_submitted);
	job = calloc(1, sizeof(*job));
	if (!job) {
		send_error(req, 500, "out of memory");
		goto out;
	}
	if (job_intake(d, req, json, job) != 0)
		goto out;

	ret = job_published_answer(d, job->key, &body);
	if (ret == 0) {
		METRIC_INC(d, jobs_cache_hits);
		(void)store_touch_key(d->store, job->key, time(NULL));   /* a lost touch costs LRU order only */
		send_json(req, 200, body);
		verify_sample_hit(d, &job->job, job->key);
		goto out;
	}
	if (ret != -ENOENT) {
		send_error(req, 500, strerror(-ret));
		goto out;
	}
	ret = join_inflight(d, req, job->key);
	if (ret < 0)
		send_error(req, 500, "out of memory");
	if (ret > 0)
		METRIC_INC(d, jobs_coalesced);
	if (ret != 0)
		goto out;
	if (job_inputs_present(d, req, &job->job) != 0)
		goto out;
	if (job_queue(d, req, job) == 0)
		job = NULL;
out:
	if (job) {
		job_release(&job->job);
		free(job);
	}
	json_decref(body);
	json_decref(json);
}

static void manifest_get(struct daemon *d, struct evhttp_request *req, const char *key)
{
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (!digest_hex_valid(key)) {
		send_error(req, 400, "a key is 64 lowercase hex digits");
		return;
	}
	ret = store_get_manifest(d->store, key, &text, &len);
	if (ret < 0) {
		send_error(req, ret == -ENOENT ? 404 : 500, ret == -ENOENT ? "not published" : strerror(-ret));
		return;
	}
	(void)store_touch_key(d->store, key, time(NULL));   /* a remote mount's hit */
	if (immutable_answer(req, key)) {
		free(text);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, len);
	free(text);
	evhttp_send_reply(req, 200, "OK", NULL);
}

/* The pre-key lists of PREKEY (fs/prekey_list.h). Unlike a manifest they change when a new
 * list goes in front, so the answer is not immutable: "no-cache" lets an HTTP cache keep it but
 * makes it ask again each time, and the ETag is the SHA-256 of the text, so an unchanged object
 * costs a 304. A stale copy would only cost a client its dep-info pass. */
static void prekeys_get(struct daemon *d, struct evhttp_request *req, const char *prekey)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	unsigned char sha[DIGEST_SIZE];
	char *text = NULL, tag[DIGEST_HEX_SIZE], etag[DIGEST_HEX_SIZE + 2];
	size_t len = 0;
	int ret;

	if (!digest_hex_valid(prekey)) {
		send_error(req, 400, "a pre-key is 64 lowercase hex digits");
		return;
	}
	ret = store_get_prekey_lists(d->store, prekey, &text, &len);
	if (ret == 0)
		ret = digest_buffer(text, len, sha);
	if (ret < 0) {
		free(text);
		send_error(req, ret == -ENOENT ? 404 : 500, ret == -ENOENT ? "no list" : strerror(-ret));
		return;
	}
	digest_to_hex(sha, tag);
	snprintf(etag, sizeof(etag), "\"%s\"", tag);
	evhttp_add_header(h, "Cache-Control", "public, no-cache");
	evhttp_add_header(h, "ETag", etag);
	if (etag_matches(evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match"), tag)) {
		free(text);
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	evhttp_add_header(h, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, len);
	free(text);
	evhttp_send_reply(req, 200, "OK", NULL);
}

/* ---- collecting the store (daemon/store_gc.h) ---- */

/* A collection on the pool: the periodic one under --max-size (no WAITER), or POST /v1/gc. */
struct gc_task {
	struct task task;
	struct waiter *waiter;
	struct store_gc_request req;
	struct gc_report report;
	int ret;
	char err[512];
};

static void gc_task_run(struct daemon *d, struct task *t)
{
	struct gc_task *g = (struct gc_task *)t;

	g->ret = store_gc_execute(d->store, &g->req, &g->report, g->err, sizeof(g->err));
}

static void gc_task_finish(struct daemon *d, struct task *t, int cancelled)
{
	struct gc_task *g = (struct gc_task *)t;
	const struct gc_report *r = &g->report;
	json_t *body = NULL;
	int code = 200;

	d->server->collecting = 0;
	if (!cancelled && g->ret == 0 && g->req.collect) {
		METRIC_INC(d, gc_runs);
		if (!g->req.options.dry_run)
			d->server->store_bytes = r->size_after;
		if (!g->req.options.dry_run && (r->keys_evicted || r->blobs_removed))
			fprintf(stderr, "cachepotd: collected the store: %llu keys and %llu blobs evicted, "
				"%llu bytes freed, %llu bytes left (max %llu)\n",
				(unsigned long long)r->keys_evicted, (unsigned long long)r->blobs_removed,
				(unsigned long long)r->bytes_freed, (unsigned long long)r->size_after,
				(unsigned long long)g->req.options.max_size);
	} else if (!cancelled && g->ret < 0) {
		METRIC_INC(d, gc_failures);
		fprintf(stderr, "cachepotd: collecting the store: %s\n", g->err);
	}
	if (g->waiter) {
		if (cancelled) {
			code = 503;
			body = json_pack("{s:s}", "error", "shutting down");
		} else if (g->ret < 0) {
			code = g->ret == -ENOENT ? 404 : g->ret == -EINVAL ? 400 : 500;
			body = json_pack("{s:s}", "error", g->err);
		} else {
			body = store_gc_report_json(&g->req, r);
		}
		waiter_answer(d, g->waiter, code, body);
		json_decref(body);
	}
	store_gc_request_release(&g->req);
	free(g);
}

/* Hand G to the pool unless a collection is there already (-EBUSY). */
static int gc_submit(struct daemon *d, struct gc_task *g)
{
	int ret;

	if (d->server->collecting)
		return -EBUSY;
	g->task.run = gc_task_run;
	g->task.finish = gc_task_finish;
	ret = pool_submit(d->server->pool, &g->task, 1);
	if (ret == 0)
		d->server->collecting = 1;
	return ret;
}

static void gc_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct gc_task *g;
	char err[64];
	(void)fd;
	(void)what;

	if (d->server->stopping || d->server->collecting || !(g = calloc(1, sizeof(*g))))
		return;
	if (store_gc_request_parse(NULL, d->cfg->max_size, &g->req, err, sizeof(err)) < 0
	    || gc_submit(d, g) < 0) {
		store_gc_request_release(&g->req);
		free(g);
	}
}

/* POST /v1/gc: pins and a collection now (a writer's request: it removes keys). */
static void gc_post(struct daemon *d, struct evhttp_request *req)
{
	struct gc_task *g;
	json_t *body = NULL;
	char err[300];
	int ret;

	if (!require_writer(d, req))
		return;
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 0
	    && !(body = body_json(d, req)))
		return;
	g = calloc(1, sizeof(*g));
	if (!g) {
		json_decref(body);
		send_error(req, 500, "out of memory");
		return;
	}
	ret = store_gc_request_parse(body, d->cfg->max_size, &g->req, err, sizeof(err));
	json_decref(body);
	if (ret == 0 && !g->req.collect && !g->req.n_pins && !g->req.n_unpins) {
		ret = -EINVAL;
		snprintf(err, sizeof(err), "no max_size given and cachepotd has no --max-size");
	}
	if (ret == 0 && !(g->waiter = waiter_new(d, req)))
		ret = -ENOMEM;
	if (ret == 0 && (ret = gc_submit(d, g)) < 0) {
		waiter_drop(d, g->waiter);
		snprintf(err, sizeof(err), "%s", ret == -EBUSY ? "a collection is running already"
			 : strerror(-ret));
	}
	if (ret < 0) {
		if (ret == -EINVAL)
			METRIC_INC(d, http_bad_requests);
		send_error(req, ret == -EINVAL ? 400 : ret == -EBUSY ? 409 : 503, err);
		store_gc_request_release(&g->req);
		free(g);
	}
}

/* ---- metrics and status ---- */

static void metrics_get(struct daemon *d, struct evhttp_request *req)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct store_counters sc;
	size_t queued, running, inflight = 0;
	static const struct { const char *name, *help; size_t off; } counters[] = {
#define C(f, h) { "cachepotd_" #f "_total", h, offsetof(struct daemon_metrics, f) }
		C(http_requests, "HTTP requests received"),
		C(http_forbidden, "writes refused (403): uid/gid not allowed, plain HTTP, or TLS "
		  "without a client certificate"),
		C(http_bad_requests, "requests refused as malformed"),
		C(http_too_large, "bodies refused (413) by a route's own limit: blob, job, toolchain"),
		C(connections_refused, "connections closed at once: the peer (uid or address) held "
		  "--max-connections-per-peer already"),
		C(jobs_submitted, "jobs submitted"),
		C(jobs_cache_hits, "jobs answered from a published result"),
		C(jobs_coalesced, "jobs joined to an identical job in flight"),
		C(jobs_queue_full, "jobs refused with 503: queue full"),
		C(jobs_missing_blobs, "jobs refused with 424: blobs or toolchain missing"),
		C(jobs_key_mismatch, "jobs refused with 409: key differs from the recomputed one"),
		C(jobs_published, "results published"),
		C(jobs_c_published, "results published of C and C++ compiles"),
		C(jobs_compile_failed, "compiles that failed (422)"),
		C(jobs_errors, "jobs that failed inside the daemon (500)"),
		C(jobs_cancelled, "queued jobs cancelled at shutdown"),
		C(sandbox_runs, "sandboxes started"),
		C(sandbox_wall_ms, "milliseconds spent in sandboxes"),
		C(blobs_uploaded, "blobs uploaded"),
		C(blobs_rejected, "blob uploads whose bytes did not match the name"),
		C(blob_bytes_uploaded, "bytes of blobs uploaded"),
		C(toolchains_uploaded, "toolchains added"),
		C(toolchains_rejected, "toolchain archives refused"),
		C(nondeterministic, "second, different results for a published key"),
		C(gc_runs, "collections of the store (--max-size, POST /v1/gc)"),
		C(gc_failures, "collections that failed"),
		C(verify_sampled, "hits drawn for a rebuild check (--verify-sample)"),
		C(verify_dropped, "sampled checks dropped: the check queue was full"),
		C(verify_runs, "rebuild checks done, sampled or asked for (POST /v1/verify/<key>)"),
		C(verify_mismatches, "rebuild checks whose outputs differed from the published ones "
		  "(the key is marked)"),
		C(verify_failed, "rebuild checks that compared nothing: inputs gone, rebuild failed"),
#undef C
	};

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const uint64_t *v = (const uint64_t *)((const char *)&d->metrics + counters[i].off);
		evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i].name,
				    counters[i].help, counters[i].name, counters[i].name,
				    (unsigned long long)__atomic_load_n(v, __ATOMIC_RELAXED));
	}
	pool_counts(d->server->pool, &queued, &running);
	for (struct inflight *f = d->server->inflight; f; f = f->next)
		inflight++;
	store_get_counters(d->store, &sc);
	evbuffer_add_printf(out,
		"# TYPE cachepotd_jobs_queued gauge\ncachepotd_jobs_queued %zu\n"
		"# TYPE cachepotd_jobs_running gauge\ncachepotd_jobs_running %zu\n"
		"# TYPE cachepotd_jobs_inflight gauge\ncachepotd_jobs_inflight %zu\n"
		"# TYPE cachepotd_workers gauge\ncachepotd_workers %u\n"
		"# TYPE cachepotd_connections gauge\ncachepotd_connections %zu\n"
		"# TYPE cachepotd_store_blobs_written_total counter\ncachepotd_store_blobs_written_total %llu\n"
		"# TYPE cachepotd_store_bytes_written_total counter\ncachepotd_store_bytes_written_total %llu\n"
		"# TYPE cachepotd_store_published_total counter\ncachepotd_store_published_total %llu\n",
		queued, running, inflight, d->cfg->jobs, peers_count(d->server->peers),
		(unsigned long long)sc.blobs_written,
		(unsigned long long)sc.bytes_written, (unsigned long long)sc.published);
	evbuffer_add_printf(out,
		"# HELP cachepotd_store_keys_evicted_total keys evicted by collections\n"
		"# TYPE cachepotd_store_keys_evicted_total counter\ncachepotd_store_keys_evicted_total %llu\n"
		"# HELP cachepotd_store_blobs_removed_total blob files removed by collections\n"
		"# TYPE cachepotd_store_blobs_removed_total counter\ncachepotd_store_blobs_removed_total %llu\n"
		"# HELP cachepotd_store_bytes_freed_total bytes of blob files removed by collections\n"
		"# TYPE cachepotd_store_bytes_freed_total counter\ncachepotd_store_bytes_freed_total %llu\n"
		"# HELP cachepotd_store_bytes bytes of blobs after the last collection (0: none yet)\n"
		"# TYPE cachepotd_store_bytes gauge\ncachepotd_store_bytes %llu\n"
		"# HELP cachepotd_store_max_bytes --max-size (0: no limit)\n"
		"# TYPE cachepotd_store_max_bytes gauge\ncachepotd_store_max_bytes %llu\n",
		(unsigned long long)sc.keys_evicted, (unsigned long long)sc.blobs_removed,
		(unsigned long long)sc.bytes_freed, (unsigned long long)d->server->store_bytes,
		(unsigned long long)d->cfg->max_size);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static int count_mark(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	(void)key_hex;
	(void)text;
	(void)len;
	(*(unsigned *)ctx)++;
	return 0;
}

static void status_get(struct daemon *d, struct evhttp_request *req)
{
	size_t queued, running, inflight = 0;
	json_t *body;

	pool_counts(d->server->pool, &queued, &running);
	for (struct inflight *f = d->server->inflight; f; f = f->next)
		inflight++;
	body = json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:b}",
			 "version", PACKAGE_VERSION, "worker", d->hostname, "store", d->cfg->store_dir,
			 "uptime_s", (json_int_t)(time(NULL) - d->started), "jobs", (int)d->cfg->jobs,
			 "queue_max", (int)d->cfg->queue_max, "queued", (json_int_t)queued,
			 "running", (json_int_t)running, "inflight", (json_int_t)inflight,
			 "sandbox_runs", (json_int_t)METRIC_GET(d, sandbox_runs),
			 "published", (json_int_t)METRIC_GET(d, jobs_published), "stopping", d->server->stopping);
	if (body) {
		unsigned marked = 0;
		int ret = store_foreach_verify_mark(d->store, count_mark, &marked);
		json_object_set_new(body, "verify", json_pack("{s:i, s:i, s:f, s:o}",
			"waiting", (int)d->server->verify_waiting, "running", (int)d->server->verify_running,
			"sample", d->cfg->verify_sample,
			"marked", ret < 0 ? json_null() : json_integer(marked)));
		struct store_counters sc;
		store_get_counters(d->store, &sc);
		json_object_set_new(body, "gc", json_pack("{s:I, s:I, s:I, s:I, s:b}",
			"max_size", (json_int_t)d->cfg->max_size,
			"store_bytes", (json_int_t)d->server->store_bytes,
			"keys_evicted", (json_int_t)sc.keys_evicted,
			"bytes_freed", (json_int_t)sc.bytes_freed, "running", d->server->collecting));
	}
	send_json(req, 200, body);
	json_decref(body);
}

/* ---- dispatch ---- */

static void handle(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *rest;

	METRIC_INC(d, http_requests);
	if (!path) {
		send_error(req, 400, "bad URI");
		return;
	}
#define ROUTE(m, p) (cmd == (m) && strcmp(path, (p)) == 0)
#define PREFIX(m, p) (cmd == (m) && strncmp(path, (p), strlen(p)) == 0 && (rest = path + strlen(p)))
	if (ROUTE(EVHTTP_REQ_GET, "/metrics"))
		metrics_get(d, req);
	else if (ROUTE(EVHTTP_REQ_GET, "/v1/status"))
		status_get(d, req);
	else if (ROUTE(EVHTTP_REQ_POST, "/v1/gc"))
		gc_post(d, req);
	else if (ROUTE(EVHTTP_REQ_POST, "/v1/blobs/missing"))
		blobs_missing(d, req);
	else if (ROUTE(EVHTTP_REQ_POST, "/v1/jobs"))
		job_post(d, req);
	else if (PREFIX(EVHTTP_REQ_GET, "/v1/blobs/"))
		blob_get(d, req, rest);
	else if (PREFIX(EVHTTP_REQ_PUT, "/v1/blobs/"))
		upload_put(d, req, UPLOAD_BLOB, rest);
	else if (PREFIX(EVHTTP_REQ_GET, "/v1/toolchains/")) {
		if (digest_hex_valid(rest) && toolchain_present(d, rest))
			evhttp_send_reply(req, 204, "No Content", NULL);
		else
			send_error(req, 404, "no such toolchain");
	} else if (PREFIX(EVHTTP_REQ_PUT, "/v1/toolchains/"))
		upload_put(d, req, UPLOAD_TOOLCHAIN, rest);
	else if (PREFIX(EVHTTP_REQ_GET, "/v1/manifests/"))
		manifest_get(d, req, rest);
	else if (PREFIX(EVHTTP_REQ_GET, "/v1/prekeys/"))
		prekeys_get(d, req, rest);
	else if (PREFIX(EVHTTP_REQ_POST, "/v1/verify/"))
		verify_post(d, req, rest);
	else if (PREFIX(EVHTTP_REQ_GET, "/v1/verify/"))
		verify_get(d, req, rest);
	else
		send_error(req, 404, "no such endpoint");
#undef ROUTE
#undef PREFIX
}

/* ---- listening, shutdown ---- */

/* The socket systemd passed (LISTEN_PID/LISTEN_FDS, fd 3), or -1. */
static int inherited_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char self[32];

	if (!pid || !fds)
		return -1;
	snprintf(self, sizeof(self), "%ld", (long)getpid());
	if (strcmp(pid, self) != 0 || strcmp(fds, "1") != 0)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	/* Inherited without CLOEXEC; set it before any thread exists (server_start runs first). */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0 || fcntl(3, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	return 3;
}

static int bind_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "cachepotd: socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* A stale socket of an earlier run: the store's lock (taken before this) proves it dead. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "cachepotd: %s exists and is not a socket\n", path);
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0
	    || listen(fd, 128) < 0) {
		int ret = -errno;
		fprintf(stderr, "cachepotd: %s: %s\n", path, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	size_t queued, running;
	(void)fd;
	(void)what;

	pool_drain_done(d->server->pool);
	pool_drain_done(d->server->upload_pool);
	verify_pump(d);
	if (!d->server->stopping)
		return;
	pool_counts(d->server->pool, &queued, &running);
	{
		size_t up_queued, up_running;
		pool_counts(d->server->upload_pool, &up_queued, &up_running);
		queued += up_queued;
		running += up_running;
	}
	if (queued == 0 && running == 0 && !d->server->inflight) {
		struct timeval flush = { 0, 200000 };   /* let the last answers go out */
		fprintf(stderr, "cachepotd: all jobs done, exiting\n");
		event_base_loopexit(d->base, &flush);
	}
}

void server_begin_shutdown(struct daemon *d)
{
	struct server *s = d->server;

	if (!s || s->stopping)
		return;
	s->stopping = 1;
	fprintf(stderr, "cachepotd: shutting down: no new connections, queued jobs cancelled, "
		"running jobs finish\n");
	if (s->listener)
		evconnlistener_disable(s->listener);
	if (s->tcp_listener)
		evconnlistener_disable(s->tcp_listener);
	if (s->tls_listener)
		evconnlistener_disable(s->tls_listener);
	pool_cancel_queued(s->pool);
	pool_cancel_queued(s->upload_pool);
	verify_drop_waiting(d);
	event_active(s->done_event, EV_READ, 0);
}

/* An evhttp with the daemon's limits, answering with HANDLE, its connections made and checked
 * by the server's peers (TLS with CTX when not NULL). */
static struct evhttp *http_new(struct daemon *d, struct ssl_ctx_st *ctx)
{
	struct evhttp *http = evhttp_new(d->base);

	if (!http)
		return NULL;
	peers_serve(d->server->peers, http, ctx);
	evhttp_set_max_headers_size(http, 64 * 1024);
	evhttp_set_timeout(http, 300);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT
				   | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(http, handle, d);
	return http;
}

/* The largest body a writer's connection may send: that of its largest route, a job's JSON or
 * one part of an upload (larger uploads come in parts, upload.h). Each route checks its own
 * limit once the body is read; libevent 2.1 offers no point between a request's headers and its
 * body to check it earlier (daemon/peers.h). */
static uint64_t writer_body_max(void)
{
	return JSON_BODY_MAX > UPLOAD_PART_MAX ? JSON_BODY_MAX : UPLOAD_PART_MAX;
}

/* The periodic sweep of uploads in parts that stopped receiving parts. */
static void upload_tick(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	unsigned n;
	(void)fd;
	(void)what;

	n = upload_sweep(&d->server->uploads, monotonic_us(),
			 (uint64_t)d->cfg->upload_idle_seconds * 1000000);
	if (n)
		fprintf(stderr, "cachepotd: dropped %u upload%s idle for %u s\n", n, n == 1 ? "" : "s",
			d->cfg->upload_idle_seconds);
}

/* --listen on the Unix socket's evhttp; --listen-tls on an evhttp of its own, whose
 * connections are TLS (an evhttp has one bufferevent maker for all its listeners). */
static int network_start(struct daemon *d, struct server *s)
{
	char err[512];
	int ret;

	if (d->cfg->listen) {
		ret = listen_tcp(s->http, d->base, d->cfg->listen, &s->tcp_listener, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: --listen %s\n", err);
			return ret;
		}
		fprintf(stderr, "cachepotd: listening on %s (HTTP, reads only)\n", d->cfg->listen);
	}
	if (d->cfg->listen_tls) {
		ret = listen_tls_context_new(d->cfg->tls_cert, d->cfg->tls_key, d->cfg->client_ca,
					     &s->tls_context, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: %s\n", err);
			return ret;
		}
		s->https = http_new(d, s->tls_context);
		if (!s->https)
			return -ENOMEM;
		ret = listen_tcp(s->https, d->base, d->cfg->listen_tls, &s->tls_listener, err,
				 sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: --listen-tls %s\n", err);
			return ret;
		}
		fprintf(stderr, "cachepotd: listening on %s (TLS; writes with a client certificate "
			"from %s)\n", d->cfg->listen_tls, d->cfg->client_ca);
	}
	return 0;
}

int server_start(struct daemon *d)
{
	struct evhttp_bound_socket *bound;
	struct server *s;
	int fd, ret;

	s = d->server = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (getrandom(&s->verify_rng, sizeof(s->verify_rng), GRND_NONBLOCK) != sizeof(s->verify_rng)
	    || s->verify_rng == 0)
		s->verify_rng = (uint64_t)monotonic_us() | 1;
	s->done_event = event_new(d->base, -1, 0, done_cb, d);
	if (!s->done_event)
		return -ENOMEM;
	ret = peers_new(d, writer_body_max(), d->cfg->max_connections_per_peer, &s->peers);
	if (ret < 0)
		return ret;
	s->http = http_new(d, NULL);
	if (!s->http)
		return -ENOMEM;
	/* The network first: a bad address or certificate fails the start before the socket. */
	ret = network_start(d, s);
	if (ret < 0)
		return ret;

	fd = inherited_socket();
	if (fd < 0) {
		fd = bind_socket(d->cfg->socket_path);
		if (fd < 0)
			return fd;
	}
	s->listener = evconnlistener_new(d->base, NULL, NULL,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!s->listener) {
		close(fd);
		return -ENOMEM;
	}
	bound = evhttp_bind_listener(s->http, s->listener);
	if (!bound) {
		evconnlistener_free(s->listener);
		s->listener = NULL;
		return -ENOMEM;
	}
	fprintf(stderr, "cachepotd: listening on %s (store %s, %u workers, queue %u)\n",
		fd == 3 ? "the socket systemd passed" : d->cfg->socket_path, d->cfg->store_dir,
		d->cfg->jobs, d->cfg->queue_max);
	if (d->cfg->unused_toolchain_seconds) {
		/* A quarter of the bound, between 1 s and 5 minutes: a toolchain is gone at most
		 * that long after its time. */
		unsigned period = d->cfg->unused_toolchain_seconds / 4;
		struct timeval tv = { period < 1 ? 1 : period > 300 ? 300 : period, 0 };
		s->unused_timer = event_new(d->base, -1, EV_PERSIST, unused_tick, d);
		if (!s->unused_timer || event_add(s->unused_timer, &tv) < 0)
			return -ENOMEM;
	}
	{
		/* A tenth of the bound, between 1 s and a minute. */
		unsigned period = d->cfg->upload_idle_seconds / 10;
		struct timeval tv = { period < 1 ? 1 : period > 60 ? 60 : period, 0 };
		s->upload_timer = event_new(d->base, -1, EV_PERSIST, upload_tick, d);
		if (!s->upload_timer || event_add(s->upload_timer, &tv) < 0)
			return -ENOMEM;
	}
	ret = pool_start(d, d->cfg->jobs, d->cfg->queue_max, s->done_event, &s->pool);
	if (ret == 0)
		ret = pool_start(d, UPLOAD_WORKERS, d->cfg->queue_max, s->done_event,
				 &s->upload_pool);
	if (ret < 0) {
		fprintf(stderr, "cachepotd: starting workers: %s\n", strerror(-ret));
		return ret;
	}
	if (d->cfg->max_size) {
		struct timeval tv = { d->cfg->gc_interval_seconds, 0 };
		s->gc_timer = event_new(d->base, -1, EV_PERSIST, gc_tick, d);
		if (!s->gc_timer || event_add(s->gc_timer, &tv) < 0)
			return -ENOMEM;
		gc_tick(-1, 0, d);   /* once at the start, then every interval */
	}
	return 0;
}

void server_stop(struct daemon *d)
{
	struct server *s = d->server;

	if (!s)
		return;
	pool_stop(s->pool);           /* the last answers go to requests evhttp still holds */
	pool_stop(s->upload_pool);
	s->stopping = 1;
	verify_drop_waiting(d);       /* none on the pool any more */
	upload_table_clear(&s->uploads);   /* no worker holds one any more */
	if (s->http)
		evhttp_free(s->http);     /* frees the bound listeners and their sockets too */
	if (s->https)
		evhttp_free(s->https);    /* its connections' SSL too, before their SSL_CTX */
	peers_free(s->peers);             /* after every connection is gone */
	listen_tls_context_free(s->tls_context);
	if (s->done_event)
		event_free(s->done_event);
	if (s->unused_timer)
		event_free(s->unused_timer);
	if (s->upload_timer)
		event_free(s->upload_timer);
	if (s->gc_timer)
		event_free(s->gc_timer);
	free(s);
	d->server = NULL;
}
