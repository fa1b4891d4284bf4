/* The daemon's side of collecting the store; see store_gc.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"
#include "daemon/settings.h"
#include "daemon/store_gc.h"
#include "hash/digest.h"

/* Append KEY (64 lowercase hex digits) to LIST. */
static int add_key(char (**list)[65], size_t *n, const char *key, char *err, size_t errlen)
{
	if (!key || !digest_hex_valid(key))
		return error_format(err, errlen, -EINVAL, "a key is 64 lowercase hex digits, not '%s'",
		                    key ? key : "(not a string)");
	if (*n >= STORE_GC_PINS_MAX)
		return error_format(err, errlen, -EINVAL, "more than %d keys to pin or unpin",
		                    STORE_GC_PINS_MAX);
	char (*grown)[65] = reallocarray(*list, *n + 1, sizeof(**list));
	if (!grown)
		return -ENOMEM;
	*list = grown;
	memcpy(grown[(*n)++], key, 65);
	return 0;
}

static int add_keys(json_t *array, char (**list)[65], size_t *n, const char *what, char *err,
                    size_t errlen)
{
	size_t i;
	json_t *v;
	if (!array)
		return 0;
	if (!json_is_array(array))
		return error_format(err, errlen, -EINVAL, "\"%s\": a list of keys expected", what);
	json_array_foreach(array, i, v) {
		int ret = add_key(list, n, json_string_value(v), err, errlen);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int store_gc_request_parse(json_t *body, uint64_t default_max, struct store_gc_request *req,
                           char *err, size_t errlen)
{
	const char *name;
	json_t *v;
	int ret;

	memset(req, 0, sizeof(*req));
	req->options.max_size = default_max;
	req->collect = default_max > 0;
	if (!body)
		return 0;
	if (!json_is_object(body))
		return error_format(err, errlen, -EINVAL, "a JSON object expected");
	json_object_foreach(body, name, v) {
		if (strcmp(name, "max_size") == 0) {
			uint64_t size;
			if (json_is_integer(v) && json_integer_value(v) >= 0)
				size = (uint64_t)json_integer_value(v);
			else if (!json_is_string(v) || daemon_parse_size(json_string_value(v), &size) < 0)
				return error_format(err, errlen, -EINVAL,
				                    "max_size: a size expected (digits and an optional K, M, "
				                    "G or T), not '%s'",
				                    json_is_string(v) ? json_string_value(v) : "(not a string)");
			req->options.max_size = size;
			req->collect = 1;
		} else if (strcmp(name, "dry_run") == 0) {
			if (!json_is_boolean(v))
				return error_format(err, errlen, -EINVAL, "dry_run: true or false expected");
			req->options.dry_run = json_is_true(v);
		} else if (strcmp(name, "pin") == 0) {
			if ((ret = add_keys(v, &req->pins, &req->n_pins, name, err, errlen)) < 0)
				return ret;
		} else if (strcmp(name, "unpin") == 0) {
			if ((ret = add_keys(v, &req->unpins, &req->n_unpins, name, err, errlen)) < 0)
				return ret;
		} else {
			return error_format(err, errlen, -EINVAL, "unknown member \"%s\"", name);
		}
	}
	return 0;
}

void store_gc_request_release(struct store_gc_request *req)
{
	free(req->pins);
	free(req->unpins);
	req->pins = req->unpins = NULL;
	req->n_pins = req->n_unpins = 0;
}

int store_gc_execute(struct store *store, const struct store_gc_request *req,
                     struct gc_report *report, char *err, size_t errlen)
{
	int ret;

	memset(report, 0, sizeof(*report));
	/* Pins are not changed by a dry run either: it changes nothing. */
	for (size_t i = 0; i < req->n_unpins && !req->options.dry_run; i++)
		if ((ret = store_set_pin(store, req->unpins[i], 0)) < 0)
			return error_format(err, errlen, ret, "unpinning %s: %s", req->unpins[i],
			                    strerror(-ret));
	for (size_t i = 0; i < req->n_pins; i++) {
		if (req->options.dry_run) {
			char *text = NULL;
			size_t len;
			ret = store_get_manifest(store, req->pins[i], &text, &len);
			free(text);
		} else {
			ret = store_set_pin(store, req->pins[i], 1);
		}
		if (ret < 0)
			return error_format(err, errlen, ret, "pinning %s: %s", req->pins[i],
			                    ret == -ENOENT ? "no such key" : strerror(-ret));
	}
	if (!req->collect)
		return 0;
	return gc_run(store, &req->options, report, err, errlen);
}

json_t *store_gc_report_json(const struct store_gc_request *req, const struct gc_report *r)
{
	return json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	                 "collected", req->collect, "dry_run", req->options.dry_run,
	                 "max_size", (json_int_t)req->options.max_size,
	                 "size_before", (json_int_t)r->size_before,
	                 "size_after", (json_int_t)r->size_after, "keys", (json_int_t)r->keys,
	                 "keys_evicted", (json_int_t)r->keys_evicted,
	                 "keys_pinned", (json_int_t)r->keys_pinned,
	                 "keys_failed", (json_int_t)r->keys_failed,
	                 "blobs_removed", (json_int_t)r->blobs_removed,
	                 "orphans_removed", (json_int_t)r->orphans_removed,
	                 "strays_removed", (json_int_t)r->strays_removed,
	                 "young_bytes", (json_int_t)r->young_bytes,
	                 "bytes_freed", (json_int_t)r->bytes_freed);
}

static void print_report(const struct store_gc_request *req, const struct gc_report *r)
{
	if (!req->collect) {
		printf("pins updated; no collection (no --max-size)\n");
		return;
	}
	printf("%s%llu keys, %llu bytes before, %llu after (max %llu): %s %llu keys, %llu blobs, "
	       "%llu bytes (%llu unreferenced blobs, %llu files with no record); %llu keys pinned%s\n",
	       req->options.dry_run ? "dry run: " : "", (unsigned long long)r->keys,
	       (unsigned long long)r->size_before, (unsigned long long)r->size_after,
	       (unsigned long long)req->options.max_size,
	       req->options.dry_run ? "would evict" : "evicted", (unsigned long long)r->keys_evicted,
	       (unsigned long long)r->blobs_removed, (unsigned long long)r->bytes_freed,
	       (unsigned long long)r->orphans_removed, (unsigned long long)r->strays_removed,
	       (unsigned long long)r->keys_pinned,
	       r->keys_failed ? "; some manifests failed verification (run fsck)" : "");
}

int store_gc_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 's' },
		{ "pin", required_argument, NULL, 'p' },
		{ "unpin", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_gc_request req;
	struct gc_report report;
	struct store *store = NULL;
	char err[512] = "";
	int opt, json = 0, status = 2, ret;
	struct stat st;

	memset(&req, 0, sizeof(req));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		ret = 0;
		if (opt == 'n')
			req.options.dry_run = 1;
		else if (opt == 's') {
			if (daemon_parse_size(optarg, &req.options.max_size) < 0) {
				fprintf(stderr, "cachepot gc: --max-size: a size expected (digits and an "
				        "optional K, M, G or T), not '%s'\n", optarg);
				goto out;
			}
			req.collect = 1;
		} else if (opt == 'p')
			ret = add_key(&req.pins, &req.n_pins, optarg, err, sizeof(err));
		else if (opt == 'u')
			ret = add_key(&req.unpins, &req.n_unpins, optarg, err, sizeof(err));
		else if (opt == 'j')
			json = 1;
		else
			goto usage;
		if (ret < 0) {
			fprintf(stderr, "cachepot gc: %s\n", err);
			goto out;
		}
	}
	if (optind != argc - 1)
		goto usage;
	if (!req.collect && !req.n_pins && !req.n_unpins) {
		fprintf(stderr, "cachepot gc: --max-size SIZE, --pin KEY or --unpin KEY needed\n");
		goto out;
	}
	/* An existing store only: opening as the writer would otherwise make one. */
	int dirfd = open(argv[optind], O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || fstatat(dirfd, "index/CURRENT", &st, 0) < 0) {
		fprintf(stderr, "cachepot gc: %s: no store there (%s)\n", argv[optind], strerror(errno));
		if (dirfd >= 0)
			close(dirfd);
		goto out;
	}
	close(dirfd);
	status = 1;
	ret = store_open(argv[optind], STORE_CREATE, &store);
	if (ret < 0) {
		fprintf(stderr, "cachepot gc: opening the store %s: %s%s\n", argv[optind], strerror(-ret),
		        ret == -EBUSY ? " (a cachepotd holds it: run cachepot gc without --store, "
		        "which asks that daemon)" : "");
		goto out;
	}
	ret = store_gc_execute(store, &req, &report, err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "cachepot gc: %s\n", err);
		goto out;
	}
	if (json) {
		json_t *j = store_gc_report_json(&req, &report);
		char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!text)
			goto out;
		printf("%s\n", text);
		free(text);
	} else {
		print_report(&req, &report);
	}
	status = 0;
	goto out;
usage:
	fprintf(stderr, "usage: cachepot gc [--dry-run] [--max-size SIZE] [--pin KEY] [--unpin KEY] "
	        "[--json] --store DIR\n");
out:
	store_close(store);
	store_gc_request_release(&req);
	return status;
}
