/* The submitting side of the daemon's HTTP API; see daemon_client.h and the API list in
 * daemon/server.c. */
#include "config.h"

#include "client/daemon_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/error.h"

/* The most bytes of a daemon answer kept (manifests and errors are small). */
#define ANSWER_MAX (1u << 20)
/* Seconds: see daemon_client.h. */
#define CONNECT_TIMEOUT 5L
#define STALL_TIMEOUT 30L
/* The longest URL a request goes to: the server setting's limit and the longest path. */
#define URL_MAX 512

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

/* One conversation with the daemon: where it is, and where a failure is explained. */
struct request {
	const struct daemon_endpoint *daemon;
	char *err;
	size_t errlen;
};

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return -EACCES;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* Point C at PATH on the daemon, writing the URL into URL (LEN bytes). The one place that
 * knows the transport: the Unix socket, with a placeholder host in the URL, or TCP to a remote
 * worker, its certificate checked (peer and host) against the CA, this machine's own given
 * when there is one. */
static int endpoint_setopt(struct request *r, CURL *c, const char *path, char *url, size_t len)
{
	const struct daemon_endpoint *d = r->daemon;

	if (snprintf(url, len, "%s%s", d->url ? d->url : "http://cachepotd", path) >= (int)len)
		return error_format(r->err, r->errlen, -ENAMETOOLONG, "%s: too long", path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (!d->url) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
		return 0;
	}
	/* The server setting is checked to be http(s); redirects are not followed (the
	 * default), so nothing else is ever spoken to. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (d->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, d->cacert);
	if (d->tls_cert)
		curl_easy_setopt(c, CURLOPT_SSLCERT, d->tls_cert);
	if (d->tls_key)
		curl_easy_setopt(c, CURLOPT_SSLKEY, d->tls_key);
	/* A worker that dies or drops off the network while compiling is noticed within about
	 * a minute instead of at the job's timeout. */
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
	return 0;
}

/* What a PUT sends: LENGTH bytes of FD from OFFSET, read with pread (FD's offset untouched). */
struct upload_source {
	int fd;
	off_t offset;
	uint64_t length, sent;
	int err;          /* errno of a failed read */
};

static size_t upload_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct upload_source *src = userdata;
	size_t want = size * nitems;
	ssize_t n;

	if (want > src->length - src->sent)
		want = (size_t)(src->length - src->sent);
	if (want == 0)
		return 0;
	do
		n = pread(src->fd, buf, want, src->offset + (off_t)src->sent);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		src->err = n < 0 ? errno : EIO;   /* a file that shrank while it was sent */
		return CURL_READFUNC_ABORT;
	}
	src->sent += (uint64_t)n;
	return (size_t)n;
}

/* How long a request may take. */
enum wait {
	WAIT_TRANSFER,  /* a transfer: abandoned when it stalls for STALL_TIMEOUT seconds */
	WAIT_WORK,      /* the daemon works before it answers, silent meanwhile: the job's compile,
			   the toolchain's unpacking */
};

/* One request. BODY (LEN bytes) for POST, or UPLOAD for PUT, or neither for GET; TIMEOUT
 * seconds at most. Returns 0 with the HTTP status in *STATUS, or -errno with the error set when
 * no answer came. */
static int http(struct request *r, const char *method, const char *path, const char *body, size_t len,
		struct upload_source *upload, long timeout, enum wait wait, long *status,
		struct answer *answer)
{
	CURL *c = curl_easy_init();
	struct curl_slist *headers = NULL;
	char url[URL_MAX];
	CURLcode rc;
	int ret;

	*status = 0;
	if (!c)
		return error_format(r->err, r->errlen, -ENOMEM, "curl_easy_init failed");
	ret = endpoint_setopt(r, c, path, url, sizeof(url));
	if (ret < 0) {
		curl_easy_cleanup(c);
		return ret;
	}
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	if (wait == WAIT_TRANSFER) {
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_TIMEOUT);
	}
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, answer_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, answer);
	if (body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else if (upload) {
		headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
		upload->sent = 0;
		upload->err = 0;
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
		curl_easy_setopt(c, CURLOPT_READDATA, upload);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)upload->length);
	}
	/* Large uploads would otherwise wait a second for "100 Continue". */
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	rc = curl_easy_perform(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK && upload && upload->err)
		ret = error_format(r->err, r->errlen, -upload->err, "%s %s: reading what it sends: %s",
				   method, r->daemon->url ? url : path, strerror(upload->err));
	else if (rc != CURLE_OK)
		ret = error_format(r->err, r->errlen, curl_errno(rc), "%s %s: %s", method,
				   r->daemon->url ? url : path, curl_easy_strerror(rc));
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	return ret;
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

/* The body size of one PUT, the daemon's largest (daemon/upload.h UPLOAD_PART_MAX): a larger
 * file goes in parts of this size. */
#define UPLOAD_PART_SIZE (8u << 20)
/* Times a part may be refused as out of place (409) before the upload gives up. */
#define UPLOAD_CONFLICTS_MAX 3

/* PUT the whole of FD (NAME in messages; read by offset, not closed) to URL_PATH: in one
 * request when it fits in one body, else in parts of one upload (daemon/upload.h), each part
 * sent when the daemon has written the last one. TIMEOUT and WAIT are per request; the
 * daemon's work (a toolchain's unpacking) happens in the last one. */
static int upload_fd(struct request *r, int fd, const char *name, const char *url_path, long timeout,
		     enum wait wait)
{
	struct upload_source src = { .fd = fd };
	unsigned char random[16];
	char token[33], path[URL_MAX], msg[200];
	unsigned conflicts = 0;
	struct answer a = { 0 };
	uint64_t size, offset = 0;
	struct stat st;
	long code;
	int ret;

	if (fstat(fd, &st) < 0)
		return error_format(r->err, r->errlen, -errno, "%s: %s", name, strerror(errno));
	size = (uint64_t)st.st_size;
	if (size <= UPLOAD_PART_SIZE) {
		src.length = size;
		ret = http(r, "PUT", url_path, NULL, 0, &src, timeout, wait, &code, &a);
		if (ret == 0 && code != 200 && code != 201 && code != 204)
			ret = error_format(r->err, r->errlen, -EPROTO, "PUT %.40s...: %ld %s", url_path,
					   code, answer_error(&a, msg, sizeof(msg)));
		answer_reset(&a);
		return ret;
	}
	if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
		return error_format(r->err, r->errlen, -EIO, "getrandom: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(random); i++)
		snprintf(token + 2 * i, 3, "%02x", random[i]);
	while (offset < size) {
		uint64_t len = size - offset < UPLOAD_PART_SIZE ? size - offset : UPLOAD_PART_SIZE;
		int last = offset + len == size;
		json_t *j;

		if (snprintf(path, sizeof(path), "%s?upload=%s&offset=%llu&total=%llu", url_path, token,
			     (unsigned long long)offset, (unsigned long long)size) >= (int)sizeof(path))
			return error_format(r->err, r->errlen, -ENAMETOOLONG, "%s: too long", url_path);
		src.offset = (off_t)offset;
		src.length = len;
		ret = http(r, "PUT", path, NULL, 0, &src, timeout, last ? wait : WAIT_TRANSFER, &code, &a);
		if (ret < 0)
			break;
		if (code == 200 || code == 201 || code == 204)
			break;   /* complete, or the daemon had it already */
		j = (code == 202 || code == 409) && a.data ? json_loads(a.data, 0, NULL) : NULL;
		if (j && json_is_integer(json_object_get(j, "received"))
		    && json_integer_value(json_object_get(j, "received")) >= 0
		    && (uint64_t)json_integer_value(json_object_get(j, "received")) <= size
		    && (code == 202 ? (uint64_t)json_integer_value(json_object_get(j, "received")) == offset + len
				    : ++conflicts <= UPLOAD_CONFLICTS_MAX)) {
			offset = (uint64_t)json_integer_value(json_object_get(j, "received"));
			json_decref(j);
			answer_reset(&a);
			continue;
		}
		json_decref(j);
		ret = error_format(r->err, r->errlen, -EPROTO, "PUT %.40s... (part at %llu of %llu): %ld %s",
				   url_path, (unsigned long long)offset, (unsigned long long)size, code,
				   answer_error(&a, msg, sizeof(msg)));
		break;
	}
	answer_reset(&a);
	return ret;
}

static int upload_file(struct request *r, const char *path, const char *url_path, long timeout, enum wait wait)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), ret;

	if (fd < 0)
		return error_format(r->err, r->errlen, -errno, "%s: %s", path, strerror(errno));
	ret = upload_fd(r, fd, path, url_path, timeout, wait);
	close(fd);
	return ret;
}

/* Upload every input blob the daemon lacks. */
static int upload_missing(struct request *r, const struct daemon_submission *sub, const json_t *missing)
{
	const struct job *job = sub->job;
	size_t i;
	json_t *v;
	json_array_foreach(missing, i, v) {
		const char *hex = json_string_value(v);
		size_t k;
		char path[128];
		int ret;
		if (!hex || !digest_hex_valid(hex))
			return error_format(r->err, r->errlen, -EPROTO, "the daemon named a bad blob");
		for (k = 0; k < job->n_inputs; k++) {
			char h[DIGEST_HEX_SIZE];
			digest_to_hex(job->inputs[k].sha256, h);
			if (strcmp(h, hex) == 0)
				break;
		}
		if (k == job->n_inputs)
			return error_format(r->err, r->errlen, -EPROTO, "the daemon asked for a blob this job does not have");
		snprintf(path, sizeof(path), "/v1/blobs/%s", hex);
		ret = upload_file(r, sub->input_local[k], path, 600, WAIT_TRANSFER);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Whether the daemon has the toolchain at PATH: 1, 0 (it answered 404), or -errno. */
static int toolchain_present(struct request *r, const char *path)
{
	struct answer a = { 0 };
	long code;
	int ret = http(r, "GET", path, NULL, 0, NULL, 30, WAIT_TRANSFER, &code, &a);
	answer_reset(&a);
	if (ret < 0)
		return ret;
	if (code == 200 || code == 204)
		return 1;
	if (code == 404)
		return 0;
	return error_format(r->err, r->errlen, -EPROTO, "GET %s: %ld", path, code);
}

/* Upload the toolchain TC unless the daemon has it. One wrapper per machine does it at a time;
 * the others wait on the lock, then find it present. */
static int ensure_tree(struct request *r, const struct daemon_submission *sub, const struct toolchain *tc)
{
	char path[128], lock_path[PATH_MAX], tmp[PATH_MAX];
	int lock = -1, fd = -1, ret;

	snprintf(path, sizeof(path), "/v1/toolchains/%s", tc->id);
	ret = toolchain_present(r, path);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	if (!sub->cache_dir) {
		/* Without a cache directory: no lock (concurrent wrappers may each send it; the
		 * daemon keeps one), and the archive in a file that has no name at all. */
		const char *tmpdir = getenv("TMPDIR");
		if (!tmpdir || tmpdir[0] != '/')
			tmpdir = "/tmp";
		snprintf(tmp, sizeof(tmp), "an unnamed file in %s", tmpdir);
		fd = open(tmpdir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
		if (fd < 0) {
			ret = error_format(r->err, r->errlen, -errno, "%s: %s", tmp, strerror(errno));
			goto out;
		}
	} else {
		snprintf(lock_path, sizeof(lock_path), "%s/toolchain-upload.lock", sub->cache_dir);
		lock = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
		if (lock < 0 || flock(lock, LOCK_EX) < 0) {
			ret = error_format(r->err, r->errlen, -errno, "%s: %s", lock_path, strerror(errno));
			goto out;
		}
		/* Another wrapper may have sent it while this one waited for the lock; an error
		 * here is not final either, the upload below tells. */
		if (toolchain_present(r, path) == 1) {
			ret = 0;
			goto out;
		}
		snprintf(tmp, sizeof(tmp), "%s/toolchain-%s.tar.XXXXXX", sub->cache_dir, tc->id);
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			ret = error_format(r->err, r->errlen, -errno, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		/* Sent from the fd it is written through, not reopened by name. */
		unlink(tmp);
	}
	ret = toolchain_write_archive(tc, fd);
	if (ret < 0) {
		ret = error_format(r->err, r->errlen, ret, "cannot archive the toolchain");
		goto out;
	}
	ret = upload_fd(r, fd, tmp, path, 900, WAIT_WORK);
out:
	if (fd >= 0)
		close(fd);
	if (lock >= 0)
		close(lock);
	return ret;
}

/* The toolchain, and a link job's link part. */
static int ensure_toolchain(struct request *r, const struct daemon_submission *sub)
{
	int ret = ensure_tree(r, sub, sub->toolchain);
	if (ret == 0 && sub->link_toolchain)
		ret = ensure_tree(r, sub, sub->link_toolchain);
	return ret;
}

/* Ask which of the job's input blobs the daemon lacks and upload them. */
static int send_missing_blobs(struct request *r, const struct daemon_submission *sub)
{
	struct answer a = { 0 };
	json_t *hashes = json_array(), *question = NULL, *ans = NULL;
	char msg[300];
	char *text = NULL;
	long code;
	int ret;

	for (size_t i = 0; hashes && i < sub->job->n_inputs; i++) {
		char h[DIGEST_HEX_SIZE];
		digest_to_hex(sub->job->inputs[i].sha256, h);
		json_array_append_new(hashes, json_string(h));
	}
	question = hashes ? json_pack("{s:O}", "blobs", hashes) : NULL;
	text = question ? json_dumps(question, JSON_COMPACT) : NULL;
	if (!text) {
		ret = error_format(r->err, r->errlen, -ENOMEM, "out of memory");
		goto out;
	}
	ret = http(r, "POST", "/v1/blobs/missing", text, strlen(text), NULL, 60, WAIT_TRANSFER, &code, &a);
	if (ret < 0)
		goto out;
	if (code != 200) {
		ret = error_format(r->err, r->errlen, -EPROTO, "POST /v1/blobs/missing: %ld %s", code, answer_error(&a, msg, sizeof(msg)));
		goto out;
	}
	ans = json_loads(a.data, 0, NULL);
	if (!json_is_array(json_object_get(ans, "missing"))) {
		ret = error_format(r->err, r->errlen, -EPROTO, "POST /v1/blobs/missing: an answer without \"missing\"");
		goto out;
	}
	ret = upload_missing(r, sub, json_object_get(ans, "missing"));
out:
	answer_reset(&a);
	json_decref(hashes);
	json_decref(question);
	json_decref(ans);
	free(text);
	return ret;
}

int daemon_submit(const struct daemon_endpoint *daemon, const struct daemon_submission *submission,
		  long *job_status, char *err, size_t errlen)
{
	struct request r = { .daemon = daemon, .err = err, .errlen = errlen };
	struct answer a = { 0 };
	json_t *job = NULL, *ans = NULL;
	char key_hex[DIGEST_HEX_SIZE], msg[300];
	char *text = NULL;
	long code;
	int ret;

	err[0] = '\0';
	*job_status = 0;
	ret = send_missing_blobs(&r, submission);
	if (ret == 0)
		ret = ensure_toolchain(&r, submission);
	if (ret < 0)
		goto out;

	digest_to_hex(submission->key, key_hex);
	job = job_to_json(submission->job);
	if (job)
		json_object_set_new(job, "expected_key", json_string(key_hex));
	text = job ? json_dumps(job, JSON_COMPACT) : NULL;
	if (!text) {
		ret = error_format(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	/* A blob can vanish between the question and the job only if the store is collected;
	 * one retry covers it. */
	for (int attempt = 0; attempt < 2; attempt++) {
		answer_reset(&a);
		ret = http(&r, "POST", "/v1/jobs", text, strlen(text), NULL, (long)submission->timeout, WAIT_WORK,
			   &code, &a);
		if (ret < 0)
			break;
		*job_status = code;
		if (code == 200)
			break;
		if (code == 422) {
			ret = error_format(err, errlen, -EPROTO, "the sandboxed compile failed: %s", answer_error(&a, msg, sizeof(msg)));
			break;
		}
		if (code == 424 && attempt == 0) {
			json_decref(ans);
			ans = json_loads(a.data, 0, NULL);
			ret = upload_missing(&r, submission, json_object_get(ans, "missing"));
			if (ret == 0)
				ret = ensure_toolchain(&r, submission);
			if (ret == 0)
				continue;
			break;
		}
		ret = error_format(err, errlen, -EPROTO, "POST /v1/jobs: %ld %s", code, answer_error(&a, msg, sizeof(msg)));
		break;
	}
out:
	answer_reset(&a);
	json_decref(job);
	json_decref(ans);
	free(text);
	return ret;
}

int daemon_verify(const struct daemon_endpoint *daemon, const char key_hex[65], unsigned timeout,
		  long *status, char **answer, char *err, size_t errlen)
{
	struct request r = { .daemon = daemon, .err = err, .errlen = errlen };
	struct answer a = { 0 };
	char path[16 + DIGEST_HEX_SIZE];
	int ret;

	err[0] = '\0';
	*answer = NULL;
	snprintf(path, sizeof(path), "/v1/verify/%s", key_hex);
	/* The daemon answers when the rebuild is done: a compile's time, silent meanwhile. */
	ret = http(&r, "POST", path, "", 0, NULL, (long)timeout, WAIT_WORK, status, &a);
	if (ret < 0) {
		answer_reset(&a);
		return ret;
	}
	*answer = a.data;
	return 0;
}

int daemon_post_json(const struct daemon_endpoint *daemon, const char *path, const char *body,
		     long timeout, long *status, char **answer, char *err, size_t errlen)
{
	struct request r = { .daemon = daemon, .err = err, .errlen = errlen };
	struct answer a = { 0 };
	int ret;

	err[0] = '\0';
	*answer = NULL;
	ret = http(&r, "POST", path, body, strlen(body), NULL, timeout, WAIT_WORK, status, &a);
	if (ret < 0) {
		answer_reset(&a);
		return ret;
	}
	*answer = a.data ? a.data : strdup("");
	return *answer ? 0 : error_format(err, errlen, -ENOMEM, "out of memory");
}
