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
#include "client/gc.h"
#include "client/settings.h"
#include "client/submit.h"

/* The submission document, read: what daemon_submit is given. Owns everything it holds. */
struct submission {
	char *socket;
	char *server;    /* these four NULL when not set */
	char *tls_cert;
	char *tls_key;
	char *cacert;
	char *cache_dir;
	unsigned timeout;
	unsigned char key[DIGEST_SIZE];
	struct job job;
	char **input_local;         /* parallel to job.inputs, NULL-terminated */
	struct toolchain toolchain; /* id and files only */
	struct toolchain link;      /* the link part of a link job (id and files), id "" if none */
};

static void submission_release(struct submission *sub)
{
	free(sub->socket);
	free(sub->server);
	free(sub->tls_cert);
	free(sub->tls_key);
	free(sub->cacert);
	free(sub->cache_dir);
	/* NULL-terminated: calloc'd one longer than the inputs, filled in order. */
	for (char **local = sub->input_local; local && *local; local++)
		free(*local);
	free(sub->input_local);
	toolchain_release(&sub->toolchain);
	toolchain_release(&sub->link);
	job_release(&sub->job);
	memset(sub, 0, sizeof(*sub));
}

/* Read DOC into SUB: the job and its key, each input's local path (in the job's order), the
 * toolchain's id and files, and where the daemon (its socket, or a remote worker and the
 * certificates to reach it with) and the cache directory are. */
/* *SLOT = a copy of DOC's string member NAME; NULL when absent or null. -EINVAL when it is
 * something else, -ENOMEM. */
static int optional_string(json_t *doc, const char *name, char **slot)
{
	json_t *v = json_object_get(doc, name);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*slot = strdup(json_string_value(v));
	return *slot ? 0 : -ENOMEM;
}

static int submission_load(json_t *doc, struct submission *sub, char *err, size_t errlen)
{
	json_t *locals = json_object_get(doc, "input_local");
	json_t *tc = json_object_get(doc, "toolchain");
	json_t *files = json_object_get(tc, "files");
	const char *socket = json_string_value(json_object_get(doc, "socket"));
	const char *key = json_string_value(json_object_get(doc, "key"));
	const char *id = json_string_value(json_object_get(tc, "id"));
	size_t i;

	if (!socket || !key || !digest_hex_valid(key) || !id || !digest_hex_valid(id)
	    || !json_is_object(locals)) {
		snprintf(err, errlen, "a malformed submission");
		return -EINVAL;
	}
	sub->socket = strdup(socket);
	if (optional_string(doc, "cache_dir", &sub->cache_dir) < 0 || optional_string(doc, "server", &sub->server) < 0
	    || optional_string(doc, "tls_cert", &sub->tls_cert) < 0
	    || optional_string(doc, "tls_key", &sub->tls_key) < 0 || optional_string(doc, "cacert", &sub->cacert) < 0) {
		snprintf(err, errlen, "a malformed submission (cache directory, server or certificates)");
		return -EINVAL;
	}
	sub->timeout = (unsigned)json_integer_value(json_object_get(doc, "timeout"));
	if (sub->timeout == 0)
		sub->timeout = 900;
	if (digest_from_hex(key, sub->key) < 0 || job_from_json(json_object_get(doc, "job"), &sub->job, err, errlen) < 0)
		return -EINVAL;
	sub->input_local = calloc(sub->job.n_inputs + 1, sizeof(*sub->input_local));
	if (!sub->input_local || !sub->socket)
		return -ENOMEM;
	for (i = 0; i < sub->job.n_inputs; i++) {
		const char *local = json_string_value(json_object_get(locals, sub->job.inputs[i].path));
		if (!local) {
			snprintf(err, errlen, "no local path for %s", sub->job.inputs[i].path);
			return -EINVAL;
		}
		sub->input_local[i] = strdup(local);
		if (!sub->input_local[i])
			return -ENOMEM;
	}
	memcpy(sub->toolchain.id, id, DIGEST_HEX_SIZE);
	if (toolchain_files_from_json(files, &sub->toolchain) < 0) {
		snprintf(err, errlen, "a malformed toolchain file list");
		return -EINVAL;
	}
	if (json_object_get(doc, "link_toolchain")) {
		json_t *link = json_object_get(doc, "link_toolchain");
		const char *link_id = json_string_value(json_object_get(link, "id"));
		if (!link_id || !digest_hex_valid(link_id) || strcmp(link_id, sub->job.link_toolchain) != 0
		    || toolchain_files_from_json(json_object_get(link, "files"), &sub->link) < 0) {
			snprintf(err, errlen, "a malformed link part");
			return -EINVAL;
		}
		memcpy(sub->link.id, link_id, DIGEST_HEX_SIZE);
	}
	return 0;
}

/* `cachepot verify KEY` (submit.h): DOC names the daemon and the key. */
static int verify_main(json_t *doc)
{
	const char *key = json_string_value(json_object_get(doc, "verify"));
	const char *socket = json_string_value(json_object_get(doc, "socket"));
	char *server = NULL, *tls_cert = NULL, *tls_key = NULL, *cacert = NULL, *answer = NULL;
	unsigned timeout = (unsigned)json_integer_value(json_object_get(doc, "timeout"));
	char err[512] = "", msg[512];
	json_t *body = NULL;
	const char *result;
	long code = 0;
	int status = 1;

	if (!key || !digest_hex_valid(key) || !socket || optional_string(doc, "server", &server) < 0
	    || optional_string(doc, "tls_cert", &tls_cert) < 0 || optional_string(doc, "tls_key", &tls_key) < 0
	    || optional_string(doc, "cacert", &cacert) < 0) {
		fprintf(stderr, "cachepot verify: a malformed request to cachepot-submit\n");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	{
		const struct daemon_endpoint daemon = {
			.socket = socket, .url = server, .tls_cert = tls_cert, .tls_key = tls_key,
			.cacert = cacert,
		};
		if (daemon_verify(&daemon, key, timeout ? timeout : 900, &code, &answer, err,
				  sizeof(err)) < 0)
			fprintf(stderr, "cachepot verify: %s\n", err);
	}
	curl_global_cleanup();
	if (!answer)
		goto out;
	body = json_loads(answer, 0, NULL);
	result = json_string_value(json_object_get(body, "result"));
	if (code == 200 && result) {
		/* The whole answer, differences and all, for a person or a script. */
		char *text = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			printf("%s\n", text);
		free(text);
		if (strcmp(result, "same") == 0)
			status = 0;
		else if (strcmp(result, "different") == 0)
			status = SUBMIT_EXIT_VERIFY_DIFFERENT;
		else
			fprintf(stderr, "cachepot verify: no comparison: %s\n",
				json_string_value(json_object_get(body, "error")) ?: "(no reason given)");
		goto out;
	}
	snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(body, "error")) ?: answer);
	msg[strcspn(msg, "\n")] = '\0';
	fprintf(stderr, "cachepot verify: POST /v1/verify/%s: %ld %s\n", key, code, msg);
out:
	json_decref(body);
	free(answer);
	free(server);
	free(tls_cert);
	free(tls_key);
	free(cacert);
	return status;
}

int main(int argc, char **argv)
{
	struct submission sub;
	json_error_t jerr;
	json_t *doc;
	char err[512] = "";
	long job_status;
	int status = 1;

	/* `cachepot gc` (client/gc.h): the wrapper has no HTTP client, this program has. */
	if (argc >= 2 && strcmp(argv[1], "--gc-command") == 0) {
		struct client_config config;
		if (client_config_load(&config) < 0)
			fprintf(stderr, "cachepot gc: warning: configuration unreadable, using defaults\n");
		argv[1] = "gc";
		status = gc_command(&config, argc - 1, argv + 1);
		client_config_release(&config);
		return status;
	}

	memset(&sub, 0, sizeof(sub));
	doc = json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		fprintf(stderr, "cachepot-submit: reading the submission: %s\n", jerr.text);
		return 1;
	}
	if (json_object_get(doc, "verify")) {
		status = verify_main(doc);
		json_decref(doc);
		return status;
	}
	if (submission_load(doc, &sub, err, sizeof(err)) < 0) {
		fprintf(stderr, "cachepot-submit: %s\n", err[0] ? err : "out of memory");
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	{
		const struct daemon_endpoint daemon = {
			.socket = sub.socket,
			.url = sub.server,
			.tls_cert = sub.tls_cert,
			.tls_key = sub.tls_key,
			.cacert = sub.cacert,
		};
		const struct daemon_submission submission = {
			.job = &sub.job,
			.key = sub.key,
			.input_local = sub.input_local,
			.toolchain = &sub.toolchain,
			.link_toolchain = sub.link.id[0] ? &sub.link : NULL,
			.cache_dir = sub.cache_dir,
			.timeout = sub.timeout,
		};
		if (daemon_submit(&daemon, &submission, &job_status, err, sizeof(err)) == 0) {
			status = 0;
		} else {
			fprintf(stderr, "%s\n", err);
			status = job_status == 422 ? SUBMIT_EXIT_COMPILE_FAILED : 1;
		}
	}
	curl_global_cleanup();
out:
	json_decref(doc);
	submission_release(&sub);
	return status;
}
