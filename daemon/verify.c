/* Rebuilding a published key and comparing its outputs; see verify.h. */
#include "config.h"

#include "daemon/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/job_run.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/digest.h"

/* What compare_outputs is given and fills. */
struct verify_compare {
	const struct manifest *published;
	json_t *differences;     /* [{"name","published","rebuilt"}] */
	size_t compared;
};

/* The SHA-256 of the rebuilt output NAME beneath OUTFD, taken as collect() takes an output: one
 * component, not followed, a regular file of at most MAX bytes. 0, -ENOENT when there is no
 * such file, -EFBIG, -errno. */
static int rebuilt_digest(int outfd, const char *name, uint64_t max, unsigned char sha[DIGEST_SIZE])
{
	struct stat st;
	uint64_t size;
	int fd, ret;

	if (!manifest_output_name_valid(name))
		return -EINVAL;
	fd = openat(outfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		ret = -ENOENT;
	else if ((uint64_t)st.st_size > max)
		ret = -EFBIG;
	else
		ret = digest_fd(fd, sha, &size);
	close(fd);
	return ret;
}

static json_t *hex_or_null(const unsigned char *sha)
{
	char hex[DIGEST_HEX_SIZE];

	if (!sha)
		return json_null();
	digest_to_hex(sha, hex);
	return json_string(hex);
}

/* Note that NAME is PUBLISHED (NULL: not in the manifest) and REBUILT (NULL: not rebuilt). */
static int note_difference(struct verify_compare *c, const char *name,
			   const unsigned char *published, const unsigned char *rebuilt)
{
	json_t *one = json_pack("{s:s, s:o, s:o}", "name", name, "published", hex_or_null(published),
				"rebuilt", hex_or_null(rebuilt));
	return one && json_array_append_new(c->differences, one) == 0 ? 0 : -ENOMEM;
}

/* job_inspect_fn: every output of the published manifest against the one rebuilt, then any
 * output the job names that the manifest lacks. */
static enum job_outcome compare_outputs(struct daemon *d, const struct job *job, int outfd,
					void *ctx, json_t **body)
{
	struct verify_compare *c = ctx;
	const struct manifest *m = c->published;
	char **names = NULL;
	size_t n = 0;
	int ret;

	ret = job_expected_outputs(job, &names, &n);
	if (ret < 0) {
		*body = json_error("cannot tell the outputs of this job: %s", strerror(-ret));
		return JOB_INVALID;
	}
	for (size_t i = 0; i < m->n_outputs && ret >= 0; i++) {
		unsigned char sha[DIGEST_SIZE];
		int r = rebuilt_digest(outfd, m->outputs[i].name, d->cfg->max_output_bytes, sha);
		if (r < 0 && r != -ENOENT && r != -EFBIG)
			ret = r;
		else if (r < 0 || memcmp(sha, m->outputs[i].sha256, DIGEST_SIZE) != 0)
			ret = note_difference(c, m->outputs[i].name, m->outputs[i].sha256, r < 0 ? NULL : sha);
		c->compared++;
	}
	for (size_t i = 0; i < n && ret >= 0; i++) {
		unsigned char sha[DIGEST_SIZE];
		size_t j;
		int r;
		for (j = 0; j < m->n_outputs && strcmp(m->outputs[j].name, names[i]) != 0; j++)
			;
		if (j < m->n_outputs)
			continue;
		r = rebuilt_digest(outfd, names[i], d->cfg->max_output_bytes, sha);
		if (r == 0)
			ret = note_difference(c, names[i], NULL, sha);
		else if (r != -ENOENT && r != -EFBIG && r != -EINVAL)
			ret = r;
	}
	job_names_free(names, n);
	if (ret < 0) {
		*body = json_error("reading the rebuilt outputs: %s", strerror(-ret));
		return JOB_ERROR;
	}
	return JOB_OK;
}

/* Write the mark of KEY_HEX: the answer BODY of the check that found the difference. */
static void write_mark(struct daemon *d, const char key_hex[65], json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	/* 2: marked by an earlier check, whose evidence stays. */
	int ret = text ? store_put_verify_mark(d->store, key_hex, text, strlen(text)) : -ENOMEM;

	if (ret < 0)
		fprintf(stderr, "cachepotd: verify %s: writing the mark: %s\n", key_hex, strerror(-ret));
	free(text);
}

enum verify_result verify_run(struct daemon *d, struct job *job, const char key_hex[65],
			      json_t **body)
{
	struct verify_compare c = { 0 };
	struct manifest m;
	enum verify_result result = VERIFY_FAILED;
	enum job_outcome outcome;
	json_t *rebuild = NULL;
	const char *error = NULL;
	char msg[300];
	size_t i;
	json_t *v;
	int ret;

	*body = NULL;
	manifest_init(&m);
	c.published = &m;
	c.differences = json_array();
	if (!c.differences)
		return VERIFY_FAILED;
	ret = store_get_verified_manifest(d->store, key_hex, &m, NULL, NULL);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "the published manifest: %s",
			 ret == -ENOENT ? "not published" : strerror(-ret));
		error = msg;
	} else {
		outcome = job_rebuild(d, job, key_hex, compare_outputs, &c, &rebuild);
		if (outcome == JOB_OK) {
			result = json_array_size(c.differences) ? VERIFY_DIFFERENT : VERIFY_SAME;
		} else {
			error = json_string_value(json_object_get(rebuild, "error"));
			snprintf(msg, sizeof(msg), "the rebuild ended with %d: %s",
				 job_outcome_status(outcome), error ? error : "(no message)");
			error = msg;
		}
	}
	METRIC_INC(d, verify_runs);
	*body = json_pack("{s:s, s:s, s:I, s:O, s:I, s:s}", "key", key_hex, "result",
			  result == VERIFY_SAME ? "same" : result == VERIFY_DIFFERENT ? "different" : "failed",
			  "outputs", (json_int_t)c.compared, "differences", c.differences,
			  "checked_at", (json_int_t)time(NULL), "worker", d->hostname);
	if (*body && error)
		json_object_set_new(*body, "error", json_string(error));
	if (result == VERIFY_FAILED) {
		METRIC_INC(d, verify_failed);
		fprintf(stderr, "cachepotd: verify %.16s: no comparison: %s\n", key_hex, error);
	} else if (result == VERIFY_SAME) {
		fprintf(stderr, "cachepotd: verify %.16s: %zu outputs rebuilt identical\n", key_hex,
			c.compared);
	} else {
		METRIC_INC(d, verify_mismatches);
		json_array_foreach(c.differences, i, v)
			fprintf(stderr, "cachepotd: verify %s: NONDETERMINISTIC: %s published %s, "
				"rebuilt %s\n", key_hex, json_string_value(json_object_get(v, "name")),
				json_string_value(json_object_get(v, "published")) ?: "(none)",
				json_string_value(json_object_get(v, "rebuilt")) ?: "(none)");
		if (*body)
			write_mark(d, key_hex, *body);
	}
	json_decref(rebuild);
	json_decref(c.differences);
	manifest_release(&m);
	return result;
}

int verify_sample_draw(uint64_t *state, double p)
{
	uint64_t x = *state;

	if (p <= 0.0)
		return 0;
	if (p >= 1.0)
		return 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	/* The top 53 bits as a fraction in [0, 1). */
	return (double)(x >> 11) * (1.0 / 9007199254740992.0) < p;
}
