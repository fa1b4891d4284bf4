/* `cachepot gc`; see gc.h. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/daemon_client.h"
#include "client/gc.h"

#define GC_TIMEOUT 3600L   /* seconds a collection of a large store may take */
#define GC_BUSY_POLL_MS 200u   /* while another collection runs (409) */
#define GC_BUSY_WAIT_MS 120000u

static void print_answer(json_t *a)
{
#define N(name) ((unsigned long long)json_integer_value(json_object_get(a, name)))
	if (!json_is_true(json_object_get(a, "collected"))) {
		printf("pins updated; no collection (no --max-size, and the daemon has none)\n");
		return;
	}
	printf("%s%llu keys, %llu bytes before, %llu after (max %llu): %s %llu keys, %llu blobs, "
	       "%llu bytes (%llu unreferenced blobs, %llu files with no record); %llu keys pinned\n",
	       json_is_true(json_object_get(a, "dry_run")) ? "dry run: " : "", N("keys"),
	       N("size_before"), N("size_after"), N("max_size"),
	       json_is_true(json_object_get(a, "dry_run")) ? "would evict" : "evicted",
	       N("keys_evicted"), N("blobs_removed"), N("bytes_freed"), N("orphans_removed"),
	       N("strays_removed"), N("keys_pinned"));
#undef N
}

int gc_command(const struct client_config *config, int argc, char **argv)
{
	static const struct option options[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "max-size", required_argument, NULL, 's' },
		{ "pin", required_argument, NULL, 'p' },
		{ "unpin", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "store", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *req = json_object(), *pins = json_array(), *unpins = json_array(), *ans = NULL;
	const char *store = NULL;
	char err[512], *text = NULL, *answer = NULL;
	int opt, json = 0, status = 2;
	long code = 0;

	if (!req || !pins || !unpins)
		goto out;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'n')
			json_object_set_new(req, "dry_run", json_true());
		else if (opt == 's')
			json_object_set_new(req, "max_size", json_string(optarg));  /* the daemon parses */
		else if (opt == 'p')
			json_array_append_new(pins, json_string(optarg));
		else if (opt == 'u')
			json_array_append_new(unpins, json_string(optarg));
		else if (opt == 'j')
			json = 1;
		else if (opt == 'd')
			store = optarg;
		else
			goto usage;
	}
	if (optind != argc)
		goto usage;
	if (store) {
		/* cachepot's main runs cachepotd --gc-command for --store before it gets here. */
		fprintf(stderr, "cachepot gc: --store is run by cachepotd --gc-command\n");
		goto out;
	}
	if (json_array_size(pins))
		json_object_set(req, "pin", pins);
	if (json_array_size(unpins))
		json_object_set(req, "unpin", unpins);
	status = 1;
	text = json_dumps(req, JSON_COMPACT);
	if (!text)
		goto out;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	{
		const struct daemon_endpoint daemon = {
			.socket = config->socket,
			.url = config->server,
			.tls_cert = config->tls_cert,
			.tls_key = config->tls_key,
			.cacert = config->cacert,
		};
		/* 409: the daemon's own collection (--gc-interval-seconds) or another client's is
		 * running; ours runs once it is done (waited for up to GC_BUSY_WAIT_MS). */
		for (unsigned waited = 0;; waited += GC_BUSY_POLL_MS) {
			free(answer);
			answer = NULL;
			if (daemon_post_json(&daemon, "/v1/gc", text, GC_TIMEOUT, &code, &answer, err,
					     sizeof(err)) < 0) {
				fprintf(stderr, "cachepot gc: %s\n", err);
				goto out;
			}
			if (code != 409 || waited >= GC_BUSY_WAIT_MS)
				break;
			usleep(GC_BUSY_POLL_MS * 1000u);
		}
	}
	ans = json_loads(answer, 0, NULL);
	if (code != 200) {
		const char *e = json_string_value(json_object_get(ans, "error"));
		fprintf(stderr, "cachepot gc: the daemon answered %ld: %s\n", code, e ? e : answer);
		status = code == 400 || code == 404 ? 2 : 1;
		goto out;
	}
	if (json)
		printf("%s\n", answer);
	else if (ans)
		print_answer(ans);
	status = 0;
	goto out;
usage:
	fprintf(stderr, "usage: cachepot gc [--dry-run] [--max-size SIZE] [--pin KEY] [--unpin KEY] "
		"[--json] [--store DIR]\n");
out:
	json_decref(req);
	json_decref(pins);
	json_decref(unpins);
	json_decref(ans);
	free(text);
	free(answer);
	return status;
}
