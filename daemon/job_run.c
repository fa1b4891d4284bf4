/* One job on a worker thread; see job_run.h. */
#include "config.h"

#include "daemon/job_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "base/path.h"
#include "daemon/daemon.h"
#include "daemon/direct_publish.h"
#include "daemon/toolchain_merge.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "hash/digest.h"
#include "sandbox/sandbox.h"

#define COPY_CHUNK (1u << 20)

json_t *json_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "error", msg);
}

int job_published_answer(struct daemon *d, const char key_hex[65], json_t **body)
{
	json_error_t jerr;
	char *text = NULL;
	size_t len = 0;
	json_t *manifest;
	int ret;

	*body = NULL;
	ret = store_get_manifest(d->store, key_hex, &text, &len);
	if (ret < 0)
		return ret;
	manifest = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!manifest)
		return -EBADMSG;
	*body = json_pack("{s:s, s:o}", "key", key_hex, "manifest", manifest);
	return *body ? 0 : -ENOMEM;
}

/* Copy the blob BLOBFD into a new read-only file NAME beneath DIRFD (when a hard link is not
 * possible: another file system, a link count at its maximum). */
static int copy_blob(int blobfd, int dirfd, const char *name)
{
	char *buf = NULL;
	off_t off = 0;
	int fd, ret = 0;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = pread(blobfd, buf, COPY_CHUNK, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		ret = io_write_all(fd, buf, (size_t)n);
		if (ret < 0)
			break;
		off += n;
	}
out:
	free(buf);
	close(fd);
	if (ret < 0)
		unlinkat(dirfd, name, 0);
	return ret;
}

/* Place every input of JOB beneath ROOTFD (the directory bound at /cachepot) and replace each
 * input's sha256 by the hash of the bytes placed. JOB_OK, or another outcome with *BODY set. */
static enum job_outcome materialise(struct daemon *d, struct job *job, int rootfd, json_t **body)
{
	const size_t prefix = strlen(ROOT_INPUTS "/");
	uint64_t total = 0;

	for (size_t i = 0; i < job->n_inputs; i++) {
		struct job_input *in = &job->inputs[i];
		char hex[DIGEST_HEX_SIZE], proc[64];
		const char *leaf = NULL;
		struct stat st;
		uint64_t size;
		int dirfd = -1, blobfd = -1, ret;

		/* job_from_json checked this already; the tree is built from it, so check again. */
		if (strncmp(in->path, ROOT_INPUTS "/", prefix) != 0 || !job_path_valid(in->path)) {
			*body = json_error("input path %s is not canonical", in->path);
			return JOB_INVALID;
		}
		ret = path_walk(rootfd, in->path + prefix, 1, &dirfd, &leaf);
		if (ret < 0) {
			*body = json_error("input %s: %s", in->path, strerror(-ret));
			return JOB_INVALID;
		}
		digest_to_hex(in->sha256, hex);
		blobfd = store_open_blob(d->store, in->sha256);
		if (blobfd < 0) {
			close(dirfd);
			if (blobfd == -ENOENT) {
				*body = json_pack("{s:s, s:[s]}", "error", "missing blobs", "missing", hex);
				return JOB_MISSING_BLOB;
			}
			*body = json_error("opening blob %s: %s", hex, strerror(-blobfd));
			return JOB_ERROR;
		}
		if (fstat(blobfd, &st) < 0 || !S_ISREG(st.st_mode)
		    || __builtin_add_overflow(total, (uint64_t)st.st_size, &total)
		    || total > d->cfg->max_input_bytes) {
			close(blobfd);
			close(dirfd);
			*body = json_error("inputs larger than %llu bytes",
					   (unsigned long long)d->cfg->max_input_bytes);
			return JOB_TOO_LARGE;
		}
		ret = digest_fd(blobfd, in->sha256, &size);
		if (ret == 0) {
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", blobfd);
			if (linkat(AT_FDCWD, proc, dirfd, leaf, AT_SYMLINK_FOLLOW) < 0) {
				ret = -errno;
				if (ret == -EXDEV || ret == -EMLINK || ret == -EPERM || ret == -ENOENT)
					ret = copy_blob(blobfd, dirfd, leaf);
			}
		}
		close(blobfd);
		close(dirfd);
		if (ret == -EEXIST || ret == -ENOTDIR || ret == -EISDIR) {
			*body = json_error("input %s conflicts with another input", in->path);
			return JOB_INVALID;
		}
		if (ret < 0) {
			*body = json_error("materialising %s: %s", in->path, strerror(-ret));
			return JOB_ERROR;
		}
	}
	/* The working directory exists even when no input lies in it. */
	if (strcmp(job->cwd, ROOT_INPUTS) != 0) {
		int cwdfd = -1;
		int ret = path_walk(rootfd, job->cwd + prefix, 1, &cwdfd, NULL);
		if (ret < 0) {
			*body = json_error("cwd %s: %s", job->cwd, strerror(-ret));
			return JOB_INVALID;
		}
		close(cwdfd);
	}
	return JOB_OK;
}

/* A job's blobs, begun but not committed: its outputs, then stdout and stderr, committed
 * together (store_blob_commit_many: the fsyncs of a job in flight at once). */
struct job_blobs {
	struct store_blob_writer **writers;
	size_t n, cap;
};

static void job_blobs_abort(struct job_blobs *b)
{
	for (size_t i = 0; i < b->n; i++)
		store_blob_abort(b->writers[i]);
	free(b->writers);
	b->writers = NULL;
	b->n = b->cap = 0;
}

/* Begin one more blob of B with the LEN bytes of DATA, or (FD >= 0) what FD holds. 0 or -errno. */
static int job_blobs_add(struct store *store, struct job_blobs *b, int fd, const char *data,
			 size_t len)
{
	struct store_blob_writer *w;
	int ret;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 8;
		struct store_blob_writer **p = realloc(b->writers, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->writers = p;
		b->cap = cap;
	}
	ret = store_blob_begin(store, &w);
	if (ret < 0)
		return ret;
	if (fd >= 0)
		ret = store_blob_write_fd(w, fd);
	else if (len)
		ret = store_blob_write(w, data, len);
	if (ret < 0) {
		store_blob_abort(w);
		return ret;
	}
	b->writers[b->n++] = w;
	return 0;
}

/* Take the outputs rustc was asked for from OUTFD into BLOBS (begun, not committed) and fill M's
 * outputs but their digests. JOB_OK, or another outcome with *BODY set. */
static enum job_outcome collect(struct daemon *d, const struct job *job, int outfd,
				struct manifest *m, struct job_blobs *blobs, json_t **body)
{
	char **names = NULL;
	size_t n = 0;
	enum job_outcome outcome = JOB_OK;
	int ret;

	ret = job_expected_outputs(job, &names, &n);
	if (ret < 0) {
		*body = json_error("cannot tell the outputs of this job: %s", strerror(-ret));
		return JOB_INVALID;
	}
	m->outputs = calloc(n ? n : 1, sizeof(*m->outputs));
	if (!m->outputs) {
		outcome = JOB_ERROR;
		*body = json_error("out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct manifest_output *o = &m->outputs[i];
		struct stat st;
		int fd;

		if (!manifest_output_name_valid(names[i])) {
			outcome = JOB_INVALID;
			*body = json_error("output name %s is not valid", names[i]);
			goto out;
		}
		/* A single component (checked above), opened without following a link and without
		 * blocking on a FIFO; only a regular file of bounded size is taken. */
		fd = openat(outfd, names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			outcome = JOB_COMPILE_FAILED;
			*body = json_pack("{s:s, s:s}", "error", "an expected output is missing or not a file",
					  "output", names[i]);
			goto out;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
		    || (uint64_t)st.st_size > d->cfg->max_output_bytes) {
			close(fd);
			outcome = JOB_COMPILE_FAILED;
			*body = json_pack("{s:s, s:s}", "error", "an output is not a regular file or too large",
					  "output", names[i]);
			goto out;
		}
		ret = job_blobs_add(d->store, blobs, fd, NULL, 0);
		close(fd);
		if (ret < 0) {
			outcome = JOB_ERROR;
			*body = json_error("storing output %s: %s", names[i], strerror(-ret));
			goto out;
		}
		o->name = names[i];
		names[i] = NULL;
		o->mode = (st.st_mode & 0111) ? 0755 : 0644;
		o->size = (uint64_t)st.st_size;
		m->n_outputs++;
	}
out:
	job_names_free(names, n);
	return outcome;
}

static char **build_envp(const struct job *job)
{
	char **envp = calloc(job->n_env + 1, sizeof(*envp));

	if (!envp)
		return NULL;
	for (size_t i = 0; i < job->n_env; i++) {
		if (asprintf(&envp[i], "%s=%s", job->env[i].name, job->env[i].value) < 0) {
			envp[i] = NULL;
			for (size_t j = 0; j < i; j++)
				free(envp[j]);
			free(envp);
			return NULL;
		}
	}
	return envp;
}

static json_t *failure_body(const struct sandbox_result *r)
{
	return json_pack("{s:s, s:i, s:i, s:b, s:b, s:s#, s:s#}",
			 "error", r->timed_out ? "compile timed out" : "compile failed",
			 "exit_status", r->exit_status, "signal", r->term_signal,
			 "timed_out", r->timed_out, "memory_exceeded", r->memory_exceeded,
			 "stderr", r->err ? r->err : "", r->err ? r->err_len : 0,
			 "stdout", r->out ? r->out : "", r->out ? r->out_len : 0);
}

/* Recompute the key over the hashes of the bytes materialise placed (the intake key came from
 * the description) and check it is KEY_HEX. JOB_OK, or another outcome with *BODY set. */
static enum job_outcome check_materialised_key(struct daemon *d, const struct job *job,
					       const char key_hex[65], json_t **body)
{
	unsigned char key[DIGEST_SIZE];
	char rekey[DIGEST_HEX_SIZE];

	if (job_key(job, key, NULL) < 0) {
		*body = json_error("out of memory");
		return JOB_ERROR;
	}
	digest_to_hex(key, rekey);
	if (strcmp(rekey, key_hex) != 0) {
		*body = json_pack("{s:s, s:s, s:s}", "error", "materialised inputs do not match the job",
				  "key", rekey, "expected_key", key_hex);
		return JOB_KEY_MISMATCH;
	}
	return JOB_OK;
}

/* Compile JOB in a sandbox over SCRATCH with the toolchain at TOOLCHAIN_DIR. *RESULT is filled
 * (the caller releases it); *RAN is set once the sandbox started, so that the caller releases
 * its output (sandbox_output_release). JOB_OK when rustc exited 0, or another outcome with
 * *BODY set. */
static enum job_outcome run_sandbox(struct daemon *d, const struct job *job,
				    const struct store_job_scratch *scratch,
				    const char *toolchain_dir, struct sandbox_result *result, int *ran,
				    json_t **body)
{
	struct sandbox_spec spec = { 0 };
	char **argv = calloc(job->argc + 1, sizeof(*argv));
	char **envp = build_envp(job);
	enum job_outcome outcome = JOB_ERROR;
	int ret;

	if (!argv || !envp) {
		*body = json_error("out of memory");
		goto out;
	}
	for (size_t i = 0; i < job->argc; i++)
		argv[i] = job->argv[i];
	spec.toolchain_dir = toolchain_dir;
	/* A C job sees its C part alone: the driver and its programs under /usr. */
	spec.toolchain_without_rust = job->kind == JOB_KIND_C;
	spec.input_dir = scratch->input_path;
	spec.output_host_dir = scratch->output_path;
	spec.output_dest = ROOT_OUT;
	spec.cwd = job->cwd;
	spec.argv = argv;
	spec.envp = envp;
	sandbox_limits_default(&spec.limits);
	spec.allow_no_cgroup_limits = d->cfg->allow_no_cgroup_limits;
	spec.backend = d->cfg->sandbox;
	spec.docker_socket = d->cfg->docker_socket;
	spec.docker_owner = d->store_id;
	spec.kvm_dir = d->cfg->kvm_dir;
	spec.kvm_allow_tcg = d->cfg->kvm_allow_tcg;
	spec.toolchain_id = strrchr(toolchain_dir, '/') ? strrchr(toolchain_dir, '/') + 1 : NULL;
	spec.limits.output_bytes = d->cfg->max_output_bytes;
	if (d->cfg->timeout_ms)
		spec.limits.timeout_ms = d->cfg->timeout_ms;
	if (d->cfg->memory_bytes)
		spec.limits.memory_bytes = d->cfg->memory_bytes;

	METRIC_INC(d, sandbox_runs);
	ret = sandbox_run(&spec, result);
	if (ret < 0) {
		*body = json_error("sandbox: %s%s%s", strerror(-ret), result->err ? ": " : "",
				   result->err ? result->err : "");
		goto out;
	}
	*ran = 1;
	METRIC_ADD(d, sandbox_wall_ms, result->wall_us / 1000);
	if (!result->exited || result->exit_status != 0) {
		outcome = JOB_COMPILE_FAILED;
		*body = failure_body(result);
		goto out;
	}
	outcome = JOB_OK;
out:
	if (envp) {
		for (size_t i = 0; i < job->n_env; i++)
			free(envp[i]);
		free(envp);
	}
	free(argv);
	return outcome;
}

/* Keep JOB's wire JSON as the job record of KEY_HEX. 0 or -errno. */
static int job_record_put(struct daemon *d, const struct job *job, const char key_hex[65])
{
	json_t *json = job_to_json(job);
	char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
	int ret = text ? store_put_job_record(d->store, key_hex, text, strlen(text)) : -ENOMEM;

	free(text);
	json_decref(json);
	return ret;
}

/* Store what the sandbox of JOB left (the outputs, through the fd of its output tmpfs, and
 * RESULT's stdout and stderr) and publish the manifest of KEY_HEX. JOB_OK with *BODY the
 * published answer, or another outcome with *BODY set. */
static enum job_outcome publish_outputs(struct daemon *d, const struct job *job,
					const char key_hex[65],
					const struct sandbox_result *result, json_t **body)
{
	struct manifest m;
	struct job_blobs blobs = { 0 };
	unsigned char (*digests)[DIGEST_SIZE] = NULL;
	enum job_outcome outcome = JOB_ERROR;
	int outfd, ret;

	manifest_init(&m);
	outfd = sandbox_result_output_fd(result);
	if (outfd < 0) {
		*body = json_error("opening the outputs: %s", strerror(-outfd));
		goto out;
	}
	outcome = collect(d, job, outfd, &m, &blobs, body);
	close(outfd);
	if (outcome != JOB_OK)
		goto out;
	outcome = JOB_ERROR;
	if (job_blobs_add(d->store, &blobs, -1, result->out, result->out_len) < 0
	    || job_blobs_add(d->store, &blobs, -1, result->err, result->err_len) < 0) {
		*body = json_error("storing stdout/stderr failed");
		goto out;
	}
	digests = calloc(blobs.n, sizeof(*digests));
	if (!digests) {
		*body = json_error("out of memory");
		goto out;
	}
	/* The outputs, stdout and stderr in that order (collect added the outputs). */
	ret = store_blob_commit_many(blobs.writers, blobs.n, digests);
	free(blobs.writers);
	blobs.writers = NULL;
	blobs.n = blobs.cap = 0;
	if (ret < 0) {
		*body = json_error("storing the outputs: %s", strerror(-ret));
		goto out;
	}
	for (size_t i = 0; i < m.n_outputs; i++)
		memcpy(m.outputs[i].sha256, digests[i], DIGEST_SIZE);
	memcpy(m.stdout_sha256, digests[m.n_outputs], DIGEST_SIZE);
	memcpy(m.stderr_sha256, digests[m.n_outputs + 1], DIGEST_SIZE);
	m.stdout_size = result->out_len;
	m.stderr_size = result->err_len;
	memcpy(m.key, key_hex, DIGEST_HEX_SIZE);
	memcpy(m.toolchain, job->toolchain, DIGEST_HEX_SIZE);
	m.exit_status = result->exit_status;
	m.duration_ms = result->wall_us / 1000;
	m.worker = strdup(d->hostname);
	m.created = (int64_t)time(NULL);
	ret = store_publish(d->store, &m);
	if (ret < 0) {
		*body = json_error("publishing: %s", strerror(-ret));
		goto out;
	}
	if (ret == 1)
		METRIC_INC(d, nondeterministic);
	if (ret == 0)
		METRIC_INC(d, jobs_published);
	if (ret == 0 && job->kind == JOB_KIND_C)
		METRIC_INC(d, jobs_c_published);
	/* What a later `cachepot verify KEY` rebuilds from (daemon/verify.h). */
	if (ret == 0 && (ret = job_record_put(d, job, key_hex)) < 0)
		fprintf(stderr, "cachepotd: the job record of %s was not written: %s\n", key_hex,
			strerror(-ret));
	/* What a client that never built this job needs to find it without a dep-info pass. */
	ret = direct_publish(d->store, job, &m);
	if (ret < 0)
		fprintf(stderr, "cachepotd: the pre-key list of %s was not published: %s\n", key_hex,
			strerror(-ret));
	ret = job_published_answer(d, key_hex, body);
	if (ret < 0) {
		*body = json_error("reading back the manifest: %s", strerror(-ret));
		goto out;
	}
	outcome = JOB_OK;
out:
	job_blobs_abort(&blobs);
	free(digests);
	manifest_release(&m);
	return outcome;
}

int job_outcome_status(enum job_outcome outcome)
{
	switch (outcome) {
	case JOB_OK: return 200;
	case JOB_INVALID: return 400;
	case JOB_KEY_MISMATCH: return 409;
	case JOB_TOO_LARGE: return 413;
	case JOB_COMPILE_FAILED: return 422;
	case JOB_MISSING_BLOB: return 424;
	case JOB_ERROR: break;
	}
	return 500;
}

/* The metrics that count how jobs end, moved in one place. */
static void count_outcome(struct daemon *d, enum job_outcome outcome)
{
	if (outcome == JOB_KEY_MISMATCH)
		METRIC_INC(d, jobs_key_mismatch);
	else if (outcome == JOB_COMPILE_FAILED)
		METRIC_INC(d, jobs_compile_failed);
	else if (outcome == JOB_ERROR)
		METRIC_INC(d, jobs_errors);
}

/* What job_execute and job_rebuild share: a fresh scratch tree, the toolchain, materialise,
 * re-key, the sandbox. With INSPECT NULL the outputs are published (unless KEY_HEX already is);
 * otherwise nothing is written to the store and INSPECT looks at the outputs. */
static enum job_outcome run_job(struct daemon *d, struct job *job, const char key_hex[65],
				job_inspect_fn *inspect, void *ctx, json_t **body)
{
	struct store_job_scratch scratch;
	struct sandbox_result result = { 0 };
	char *toolchain_dir = NULL;
	enum job_outcome outcome = JOB_ERROR;
	int ran = 0, ret;

	*body = NULL;
	ret = store_job_scratch_create(d->trees, __atomic_add_fetch(&d->seq, 1, __ATOMIC_RELAXED),
				       &scratch);
	if (ret < 0) {
		*body = json_error("creating the job directory: %s", strerror(-ret));
		goto out;
	}
	if (job->link_toolchain[0]) {
		/* A link job sees its base tree and its link part as one. */
		char merged[TOOLCHAIN_MERGED_NAME_SIZE], merr[512];
		ret = toolchain_merge(store_toolchains_fd(d->trees), job->toolchain, job->link_toolchain,
				      __atomic_add_fetch(&d->seq, 1, __ATOMIC_RELAXED), merr, sizeof(merr));
		if (ret < 0) {
			*body = ret == -ENOENT ? json_pack("{s:s, s:[], s:s}", "error", merr, "missing",
							   "missing_toolchain", job->link_toolchain)
					       : json_error("%s", merr);
			outcome = ret == -ENOENT ? JOB_MISSING_BLOB : ret == -EEXIST ? JOB_INVALID : JOB_ERROR;
			goto out;
		}
		toolchain_merged_name(job->toolchain, job->link_toolchain, merged);
		toolchain_dir = store_toolchain_path(d->trees, merged);
	} else {
		toolchain_dir = store_toolchain_path(d->trees, job->toolchain);
	}
	if (!toolchain_dir) {
		*body = json_error("out of memory");
		goto out;
	}

	outcome = materialise(d, job, scratch.input_fd, body);
	if (outcome == JOB_OK)
		outcome = check_materialised_key(d, job, key_hex, body);
	if (outcome == JOB_OK && inspect) {
		outcome = run_sandbox(d, job, &scratch, toolchain_dir, &result, &ran, body);
		if (outcome == JOB_OK) {
			int outfd = sandbox_result_output_fd(&result);
			if (outfd < 0) {
				*body = json_error("opening the outputs: %s", strerror(-outfd));
				outcome = JOB_ERROR;
			} else {
				outcome = inspect(d, job, outfd, ctx, body);
				close(outfd);
			}
		}
	/* Unless an earlier identical job published it while this one waited in the queue. */
	} else if (outcome == JOB_OK && job_published_answer(d, key_hex, body) != 0) {
		outcome = run_sandbox(d, job, &scratch, toolchain_dir, &result, &ran, body);
		if (outcome == JOB_OK)
			outcome = publish_outputs(d, job, key_hex, &result, body);
	}
out:
	if (!inspect)
		count_outcome(d, outcome);
	if (!*body)
		*body = json_error("out of memory");
	if (ran)
		sandbox_output_release(scratch.output_path);
	sandbox_result_release(&result);
	ret = store_job_scratch_remove(d->trees, &scratch);
	if (ret < 0)
		fprintf(stderr, "cachepotd: removing jobs/%s: %s\n", scratch.name, strerror(-ret));
	free(toolchain_dir);
	return outcome;
}

enum job_outcome job_execute(struct daemon *d, struct job *job, const char key_hex[65],
			     json_t **body)
{
	return run_job(d, job, key_hex, NULL, NULL, body);
}

enum job_outcome job_rebuild(struct daemon *d, struct job *job, const char key_hex[65],
			     job_inspect_fn *inspect, void *ctx, json_t **body)
{
	return run_job(d, job, key_hex, inspect, ctx, body);
}
