/* Uploads in parts: a blob or a toolchain archive larger than one request body, written to disk
 * part by part as it arrives.
 *
 * Why. evhttp (libevent 2.1) holds a whole request body in memory before the handler runs, and
 * offers no hook between a request's headers and its body (daemon/peers.h). So no body may be
 * large: a writer's connection accepts at most the largest JSON body or one part,
 * UPLOAD_PART_MAX, and a larger upload comes as parts of one upload, each a request of its own:
 *
 *     PUT /v1/blobs/<sha256>?upload=<token>&offset=<n>&total=<size>
 *     PUT /v1/toolchains/<id>?upload=<token>&offset=<n>&total=<size>
 *
 * TOKEN is 32 lowercase hex digits the client draws at random for this upload; together with
 * the route and the name it identifies the upload, and only a writer can start one. The parts
 * come in order, each starting where the last one ended (OFFSET = bytes received); every part
 * is written and hashed on an upload worker, so at most one part per connection is in memory.
 * The part that reaches TOTAL ends the upload as a whole-body PUT would: the blob's bytes are
 * checked against its name and moved into the store, the toolchain archive is unpacked and
 * verified (toolchain_unpack.h). Until then nothing is visible.
 *
 * Bounds: TOTAL at most the route's limit (--max-blob-bytes, --max-upload-bytes), at most
 * UPLOADS_MAX uploads in progress at once (then 503: the client falls back to a local compile),
 * and an upload that receives no part for the idle timeout is dropped with what it wrote (its
 * blob writer's temp file, its unnamed archive file).
 *
 * Everything here runs on the loop thread, except the blob writer and the file descriptor of an
 * upload marked BUSY, which belong to the worker writing its part until that part's finish.
 */
#ifndef CACHEPOT_DAEMON_UPLOAD_H
#define CACHEPOT_DAEMON_UPLOAD_H

#include <stdint.h>
#include <time.h>

#include "hash/digest.h"

#define UPLOAD_PART_MAX (8u << 20)   /* the largest body of one part, or of a whole-body upload */
#define UPLOADS_MAX 64               /* uploads in progress at once */
#define UPLOAD_TOKEN_SIZE 33         /* 32 lowercase hex digits and NUL */

struct store_blob_writer;

enum upload_kind {
	UPLOAD_BLOB,
	UPLOAD_TOOLCHAIN,
};

/* The parameters of a part, from a request's query string. */
struct upload_part_params {
	char token[UPLOAD_TOKEN_SIZE];
	uint64_t offset, total;
};

/* Parse QUERY (NULL or empty: a whole-body upload). 0 when the request is a whole-body upload,
 * 1 when it is a part (*P filled), -EINVAL when the parameters are there but malformed (a
 * missing one, a token that is not 32 lowercase hex digits, a number that is not decimal, a
 * zero TOTAL, an OFFSET not below TOTAL, an unknown parameter). */
int upload_part_params_parse(const char *query, struct upload_part_params *p)
    __attribute__((warn_unused_result));

struct upload {
	struct upload *next;
	enum upload_kind kind;
	char token[UPLOAD_TOKEN_SIZE];
	char name[DIGEST_HEX_SIZE];        /* the blob's sha256 or the toolchain's id, hex */
	uint64_t total, received;
	uint64_t last_us;                  /* monotonic time of its start or its last part */
	int busy;                          /* a part is being written by a worker */
	struct store_blob_writer *blob;    /* UPLOAD_BLOB: NULL until the first part's worker */
	int fd;                            /* UPLOAD_TOOLCHAIN: the archive so far, or -1 */
};

struct upload_table {
	struct upload *head;
	unsigned count;
};

/* The upload KIND NAME TOKEN, or NULL. */
struct upload *upload_find(struct upload_table *t, enum upload_kind kind, const char *name,
			   const char *token);

/* Start an upload of TOTAL bytes, its last use now (nothing written yet; a worker opens its file
 * on the first part). With T NULL the upload is a whole-body one, in no table, its TOKEN "".
 * 0 with *OUT, -EAGAIN when UPLOADS_MAX are in progress, -EINVAL, -ENOMEM. */
int upload_start(struct upload_table *t, enum upload_kind kind, const char *name,
		 const char *token, uint64_t total, struct upload **out)
    __attribute__((warn_unused_result));

/* Take U (not BUSY) out of T and free it with what it wrote; T NULL: a whole-body one. */
void upload_drop(struct upload_table *t, struct upload *u);

/* Drop every upload that is not BUSY and had no part for IDLE_US; returns how many. */
unsigned upload_sweep(struct upload_table *t, uint64_t now_us, uint64_t idle_us);

/* Drop everything (at shutdown, after the workers stopped). */
void upload_table_clear(struct upload_table *t);

#endif
