/* cachepot-submit: hand one miss to cachepotd (see client/submit.h for the protocol). Started
 * by the wrapper with the submission on standard input; not meant to be run by hand. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client/daemon_client.h"
#include "client/submit.h"

/* Rebuild the parts of an invocation daemon_submit reads: the job and its key, each input's
 * local path (in the job's order), the toolchain's id and files. */
static int load_submission(json_t *doc, struct client_config *config, struct invocation *inv, char *err,
			   size_t errlen)
{
	json_t *locals = json_object_get(doc, "input_local");
	json_t *tc = json_object_get(doc, "toolchain");
	json_t *files = json_object_get(tc, "files");
	const char *socket = json_string_value(json_object_get(doc, "socket"));
	const char *cache_dir = json_string_value(json_object_get(doc, "cache_dir"));
	const char *key = json_string_value(json_object_get(doc, "key"));
	const char *id = json_string_value(json_object_get(tc, "id"));
	size_t i;

	if (!socket || !cache_dir || !key || !digest_hex_valid(key) || !id || !digest_hex_valid(id)
	    || !json_is_object(locals)) {
		snprintf(err, errlen, "a malformed submission");
		return -EINVAL;
	}
	config->socket = strdup(socket);
	config->cache_dir = strdup(cache_dir);
	config->timeout = (unsigned)json_integer_value(json_object_get(doc, "timeout"));
	if (config->timeout == 0)
		config->timeout = 900;
	if (digest_from_hex(key, inv->key) < 0 || job_from_json(json_object_get(doc, "job"), &inv->job, err, errlen) < 0)
		return -EINVAL;
	inv->input_local = calloc(inv->job.n_inputs + 1, sizeof(*inv->input_local));
	if (!inv->input_local || !config->socket || !config->cache_dir)
		return -ENOMEM;
	for (i = 0; i < inv->job.n_inputs; i++) {
		const char *local = json_string_value(json_object_get(locals, inv->job.inputs[i].path));
		if (!local) {
			snprintf(err, errlen, "no local path for %s", inv->job.inputs[i].path);
			return -EINVAL;
		}
		inv->input_local[i] = strdup(local);
		if (!inv->input_local[i])
			return -ENOMEM;
	}
	memcpy(inv->toolchain.id, id, DIGEST_HEX_SIZE);
	if (toolchain_files_from_json(files, &inv->toolchain) < 0) {
		snprintf(err, errlen, "a malformed toolchain file list");
		return -EINVAL;
	}
	return 0;
}

int main(void)
{
	struct client_config config;
	struct invocation inv;
	json_error_t jerr;
	json_t *doc;
	char err[512] = "";
	int status = 1;

	memset(&config, 0, sizeof(config));
	memset(&inv, 0, sizeof(inv));
	doc = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		fprintf(stderr, "cachepot-submit: reading the submission: %s\n", jerr.text);
		return 1;
	}
	if (load_submission(doc, &config, &inv, err, sizeof(err)) < 0) {
		fprintf(stderr, "cachepot-submit: %s\n", err[0] ? err : "out of memory");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	switch (daemon_submit(&config, &inv, err, sizeof(err))) {
	case SUBMIT_OK:
		status = 0;
		break;
	case SUBMIT_COMPILE_FAILED:
		fprintf(stderr, "%s\n", err);
		status = SUBMIT_EXIT_COMPILE_FAILED;
		break;
	default:
		fprintf(stderr, "%s\n", err);
		break;
	}
	curl_global_cleanup();
out:
	json_decref(doc);
	invocation_release(&inv);
	client_config_release(&config);
	return status;
}
