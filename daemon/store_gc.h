/* The store's collection as the daemon runs it (fs/gc.h does the work): a request of pins,
 * unpins and a collection, from POST /v1/gc or from `cachepot gc --store DIR`, which runs here
 * as `cachepotd --gc-command` against a store no daemon holds.
 *
 * The request body of POST /v1/gc, every member optional:
 *   {"max_size": "SIZE" or a number, "dry_run": true|false, "pin": [KEY...], "unpin": [KEY...]}
 * SIZE as --max-size (K, M, G, T suffixes); without it, the daemon's --max-size; with neither,
 * only the pins change. The answer: store_gc_report_json. */
#ifndef CACHEPOT_DAEMON_STORE_GC_H
#define CACHEPOT_DAEMON_STORE_GC_H

#include <jansson.h>
#include <stddef.h>

#include "fs/gc.h"

#define STORE_GC_PINS_MAX 1024     /* keys in one request's pin or unpin list */

struct store_gc_request {
	struct gc_options options;
	int collect;                   /* run a collection (a size was given or configured) */
	char (*pins)[65], (*unpins)[65];   /* owned */
	size_t n_pins, n_unpins;
};

/* Parse BODY (borrowed; NULL: an empty request) into REQ, with DEFAULT_MAX (0: none) when it
 * names no size. 0, or -EINVAL / -ENOMEM with a message in ERR; REQ is to be released either
 * way. */
int store_gc_request_parse(json_t *body, uint64_t default_max, struct store_gc_request *req,
                           char *err, size_t errlen) __attribute__((warn_unused_result));
void store_gc_request_release(struct store_gc_request *req);

/* Apply REQ's unpins and pins, then its collection, to STORE (the writer). REPORT is filled.
 * 0, or -errno with a message in ERR (-ENOENT: a key to pin is not published). */
int store_gc_execute(struct store *store, const struct store_gc_request *req,
                     struct gc_report *report, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* REPORT of a collection as JSON (a new reference, NULL when out of memory). */
json_t *store_gc_report_json(const struct store_gc_request *req, const struct gc_report *report);

/* `cachepotd --gc-command [--dry-run] [--max-size SIZE] [--pin KEY] [--unpin KEY] [--json]
 * STORE`: ARGV[0] is "gc". Returns the exit status: 0 done, 1 failed, 2 usage. */
int store_gc_command(int argc, char **argv);

#endif
