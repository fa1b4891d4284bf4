/* The wrapper's side of the daemon's HTTP API; see daemon_client.h and the API list in
 * daemon/server.c. */
#include "config.h"

#include "client/daemon_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "hash/pathmap.h"

/* The most bytes of a daemon answer kept (manifests and errors are small). */
#define ANSWER_MAX (1u << 20)

struct answer {
	char *data;
	size_t len;
};

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t n = size * nmemb;
	char *grown;
	if (a->len + n > ANSWER_MAX)
		return 0; /* curl reports a write error */
	grown = realloc(a->data, a->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + a->len, ptr, n);
	a->data = grown;
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

struct request {
	const struct client_config *config;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static void set_err(struct request *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
}

/* One request. BODY (LEN bytes) for POST, or UPLOAD (an open file of UPLOAD_SIZE bytes) for
 * PUT, or neither for GET. Returns the HTTP status, or -1 with the error set. */
static long http(struct request *r, const char *method, const char *path, const char *body, size_t len,
		 FILE *upload, curl_off_t upload_size, long timeout, struct answer *answer)
{
	CURL *c = curl_easy_init();
	struct curl_slist *headers = NULL;
	char url[256];
	long code = -1;
	CURLcode rc;

	if (!c) {
		set_err(r, "curl_easy_init failed");
		return -1;
	}
	snprintf(url, sizeof(url), "http://cachepotd%s", path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, r->config->socket);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, answer_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
	if (body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (upload) {
		headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READDATA, upload);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, upload_size);
	}
	/* Large uploads would otherwise wait a second for "100 Continue". */
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK)
		set_err(r, "%s %s: %s", method, path, curl_easy_strerror(rc));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return code;
}

static void answer_reset(struct answer *a)
{
	free(a->data);
	a->data = NULL;
	a->len = 0;
}

/* The daemon's "error" member, for messages. */
static const char *answer_error(const struct answer *a, char *buf, size_t len)
{
	json_t *j = a->data ? json_loads(a->data, 0, NULL) : NULL;
	const char *e = json_string_value(json_object_get(j, "error"));
	snprintf(buf, len, "%s", e ? e : (a->data ? a->data : ""));
	buf[strcspn(buf, "\n")] = '\0';
	json_decref(j);
	return buf;
}

static int upload_file(struct request *r, const char *path, const char *url_path, long timeout)
{
	struct answer a = { 0 };
	struct stat st;
	char msg[200];
	long code;
	FILE *f = fopen(path, "rbe");

	if (!f) {
		set_err(r, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0) {
		set_err(r, "%s: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	code = http(r, "PUT", url_path, NULL, 0, f, (curl_off_t)st.st_size, timeout, &a);
	fclose(f);
	if (code >= 0 && code != 200 && code != 201 && code != 204)
		set_err(r, "PUT %.40s...: %ld %s", url_path, code, answer_error(&a, msg, sizeof(msg)));
	answer_reset(&a);
	return (code == 200 || code == 201 || code == 204) ? 0 : -1;
}

/* Upload every input blob the daemon lacks. */
static int upload_missing(struct request *r, const struct invocation *inv, const json_t *missing)
{
	size_t i;
	json_t *v;
	json_array_foreach(missing, i, v) {
		const char *hex = json_string_value(v);
		size_t k;
		char path[128];
		if (!hex || !digest_hex_valid(hex)) {
			set_err(r, "the daemon named a bad blob");
			return -1;
		}
		for (k = 0; k < inv->job.n_inputs; k++) {
			char h[DIGEST_HEX_SIZE];
			digest_to_hex(inv->job.inputs[k].sha256, h);
			if (strcmp(h, hex) == 0)
				break;
		}
		if (k == inv->job.n_inputs) {
			set_err(r, "the daemon asked for a blob this job does not have");
			return -1;
		}
		snprintf(path, sizeof(path), "/v1/blobs/%s", hex);
		if (upload_file(r, inv->input_local[k], path, 600) < 0)
			return -1;
	}
	return 0;
}

/* Upload the toolchain unless the daemon has it. One wrapper per machine does it at a time;
 * the others wait on the lock, then find it present. */
static int ensure_toolchain(struct request *r, const struct invocation *inv)
{
	struct answer a = { 0 };
	char path[128], lock_path[PATH_MAX], tmp[PATH_MAX];
	long code;
	int lock = -1, fd = -1, ret = -1;

	snprintf(path, sizeof(path), "/v1/toolchains/%s", inv->toolchain.id);
	code = http(r, "GET", path, NULL, 0, NULL, 0, 30, &a);
	answer_reset(&a);
	if (code == 200 || code == 204)
		return 0;
	if (code != 404) {
		if (code >= 0)
			set_err(r, "GET %s: %ld", path, code);
		return -1;
	}
	if (path_mkdir_parents(r->config->cache_dir, 0755) < 0) {
		set_err(r, "cannot create %s", r->config->cache_dir);
		return -1;
	}
	snprintf(lock_path, sizeof(lock_path), "%s/toolchain-upload.lock", r->config->cache_dir);
	lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		set_err(r, "%s: %s", lock_path, strerror(errno));
		goto out;
	}
	code = http(r, "GET", path, NULL, 0, NULL, 0, 30, &a);
	answer_reset(&a);
	if (code == 200 || code == 204) {
		ret = 0;
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/toolchain-%s.tar.XXXXXX", r->config->cache_dir, inv->toolchain.id);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		set_err(r, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (toolchain_write_archive(&inv->toolchain, fd) < 0) {
		set_err(r, "cannot archive the toolchain");
		unlink(tmp);
		goto out;
	}
	ret = upload_file(r, tmp, path, 900);
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return ret;
}

enum submit_result daemon_submit(const struct client_config *config, const struct invocation *inv,
				 char *err, size_t errlen)
{
	struct request r = { .config = config, .err = err, .errlen = errlen };
	struct answer a = { 0 };
	json_t *req = NULL, *hashes = NULL, *ans = NULL;
	enum submit_result result = SUBMIT_ERROR;
	char key_hex[DIGEST_HEX_SIZE], msg[300];
	char *text = NULL;
	long code;

	err[0] = '\0';
	digest_to_hex(inv->key, key_hex);
	hashes = json_array();
	for (size_t i = 0; hashes && i < inv->job.n_inputs; i++) {
		char h[DIGEST_HEX_SIZE];
		digest_to_hex(inv->job.inputs[i].sha256, h);
		json_array_append_new(hashes, json_string(h));
	}
	req = json_pack("{s:O}", "blobs", hashes);
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!text) {
		set_err(&r, "out of memory");
		goto out;
	}
	code = http(&r, "POST", "/v1/blobs/missing", text, strlen(text), NULL, 0, 60, &a);
	if (code != 200) {
		if (code >= 0)
			set_err(&r, "POST /v1/blobs/missing: %ld %s", code, answer_error(&a, msg, sizeof(msg)));
		goto out;
	}
	ans = json_loads(a.data, 0, NULL);
	if (!json_is_array(json_object_get(ans, "missing"))) {
		set_err(&r, "POST /v1/blobs/missing: an answer without \"missing\"");
		goto out;
	}
	if (upload_missing(&r, inv, json_object_get(ans, "missing")) < 0 || ensure_toolchain(&r, inv) < 0)
		goto out;

	json_decref(req);
	free(text);
	req = job_to_json(&inv->job);
	if (req)
		json_object_set_new(req, "expected_key", json_string(key_hex));
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!text) {
		set_err(&r, "out of memory");
		goto out;
	}
	/* A blob can vanish between the question and the job only if the store is collected;
	 * one retry covers it. */
	for (int attempt = 0; attempt < 2; attempt++) {
		answer_reset(&a);
		code = http(&r, "POST", "/v1/jobs", text, strlen(text), NULL, 0, (long)config->timeout, &a);
		if (code == 200) {
			result = SUBMIT_OK;
			break;
		}
		if (code == 422) {
			result = SUBMIT_COMPILE_FAILED;
			set_err(&r, "the sandboxed compile failed: %s", answer_error(&a, msg, sizeof(msg)));
			break;
		}
		if (code == 424 && attempt == 0) {
			json_decref(ans);
			ans = json_loads(a.data, 0, NULL);
			if (upload_missing(&r, inv, json_object_get(ans, "missing")) == 0
			    && ensure_toolchain(&r, inv) == 0)
				continue;
			break;
		}
		if (code >= 0)
			set_err(&r, "POST /v1/jobs: %ld %s", code, answer_error(&a, msg, sizeof(msg)));
		break;
	}
out:
	answer_reset(&a);
	json_decref(hashes);
	json_decref(req);
	json_decref(ans);
	free(text);
	return result;
}
