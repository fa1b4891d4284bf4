/* The rustc wrapper: `cachepot RUSTC ARGS...` as cargo calls it.
 *
 * Not cacheable: exec rustc at once. Cacheable: build the job and its key (hash/invocation.h),
 * look up <mount>/ac/<key>; on a hit write the outputs where rustc would have, with canonical
 * paths in .d files mapped back to local ones and fresh mtimes, replay stdout and stderr the
 * same way, and exit with the recorded status. On a miss hand the job to cachepotd through
 * cachepot-submit (client/submit.h), then serve the result the same way. Anything failing on
 * the cache path runs rustc locally after one warning line: the cache never breaks a build.
 */
#include "config.h"

#include "client/wrapper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "client/submit.h"
#include "fs/manifest.h"
#include "hash/invocation.h"

extern char **environ;

/* The largest output a hit rewrites in memory (.d files, stdout, stderr). */
#define REWRITE_MAX (64u << 20)

/* Replace this process by rustc. */
static int exec_rustc(char **argv)
{
	execv(argv[0], argv);
	fprintf(stderr, "cachepot: cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

__attribute__((format(printf, 2, 3)))
static void log_line(const struct client_config *config, const char *fmt, ...)
{
	va_list ap;
	FILE *f;
	if (!config->log)
		return;
	f = fopen(config->log, "ae");
	if (!f)
		return;
	fprintf(f, "%ld ", (long)getpid());
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

/* Copy the file NAME under DIRFD to FD with canonical paths mapped back to local ones (a .d
 * file, or rustc's recorded stdout or stderr); *BYTES grows by the bytes read. */
static int copy_rewritten(const struct invocation *inv, int dirfd, const char *name, int fd, uint64_t *bytes)
{
	char *data = NULL, *local = NULL;
	size_t len = 0, local_len = 0;
	int ret = io_read_file_at(dirfd, name, O_NOFOLLOW, REWRITE_MAX, &data, &len);

	if (ret == 0)
		ret = path_map_rewrite_to_local(&inv->rewrite, data, len, &local, &local_len);
	if (ret == 0)
		ret = io_write_all(fd, local, local_len);
	*bytes += len;
	free(data);
	free(local);
	return ret;
}

/* Write one output: into a temp file in OUT_DIR, then renamed over NAME, so a reader never
 * sees half a file and the mtime is now. */
static int write_output(const struct invocation *inv, int src_dir, const struct manifest_output *o,
			uint64_t *bytes)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int in = -1, out = -1, ret = 0;
	size_t nlen = strlen(o->name);
	int rewrite = nlen > 2 && strcmp(o->name + nlen - 2, ".d") == 0;

	if (snprintf(dst, sizeof(dst), "%s/%s", inv->out_dir, o->name) >= (int)sizeof(dst)
	    || snprintf(tmp, sizeof(tmp), "%s/.cachepot-%ld-%s", inv->out_dir, (long)getpid(), o->name)
		       >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, o->mode == 0755 ? 0755 : 0644);
	if (out < 0)
		return -errno;
	if (rewrite) {
		ret = copy_rewritten(inv, src_dir, o->name, out, bytes);
	} else {
		char buf[1 << 16];
		uint64_t copied = 0;
		in = openat(src_dir, o->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (in < 0)
			ret = -errno;
		while (ret == 0) {
			ssize_t r = read(in, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				ret = -errno;
			if (r <= 0)
				break;
			ret = io_write_all(out, buf, (size_t)r);
			copied += (uint64_t)r;
		}
		if (ret == 0 && copied != o->size)
			ret = -EIO;
		*bytes += copied;
	}
	if (in >= 0)
		close(in);
	if (close(out) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, dst) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

/* Replay a recorded stream (a blob under <mount>/cas/) to FD with paths mapped back. */
static int replay(const struct invocation *inv, int cas_dir, const unsigned char sha[32], uint64_t size, int fd)
{
	char hex[DIGEST_HEX_SIZE];
	uint64_t ignored = 0;

	if (size == 0)
		return 0;
	digest_to_hex(sha, hex);
	return copy_rewritten(inv, cas_dir, hex, fd, &ignored);
}

/* Serve the result of INV's key from the mount. Returns 0 with *STATUS set, -ENOENT when the
 * key is not published, another -errno when the mount cannot serve it. Nothing is written
 * before the manifest is read and checked, so a miss leaves no trace. */
static int serve_from_mount(const struct client_config *config, const struct invocation *inv, int *status,
			    struct stats_delta *delta, uint64_t *recorded_ms)
{
	char key_hex[DIGEST_HEX_SIZE], path[PATH_MAX];
	struct manifest m;
	char *text = NULL;
	size_t len = 0;
	int dir = -1, cas = -1, ret;

	manifest_init(&m);
	digest_to_hex(inv->key, key_hex);
	if (snprintf(path, sizeof(path), "%s/ac/%s", config->mount, key_hex) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		ret = -errno;
		/* Is the mount there at all? A missing mount is an error, not a miss. */
		if (ret == -ENOENT) {
			snprintf(path, sizeof(path), "%s/ac", config->mount);
			if (access(path, F_OK) < 0)
				ret = -ENOTCONN;
		}
		return ret;
	}
	ret = io_read_file_at(dir, MANIFEST_NAME, O_NOFOLLOW, MANIFEST_MAX_TEXT, &text, &len);
	if (ret == 0)
		ret = manifest_parse(text, len, &m);
	if (ret == 0 && strcmp(m.key, key_hex) != 0)
		ret = -EBADMSG;
	if (ret < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/cas", config->mount);
	cas = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cas < 0) {
		ret = -errno;
		goto out;
	}
	for (size_t i = 0; i < m.n_outputs && ret == 0; i++)
		ret = write_output(inv, dir, &m.outputs[i], &delta->bytes_from_cache);
	if (ret == 0)
		ret = replay(inv, cas, m.stdout_sha256, m.stdout_size, STDOUT_FILENO);
	if (ret == 0)
		ret = replay(inv, cas, m.stderr_sha256, m.stderr_size, STDERR_FILENO);
	if (ret == 0) {
		*status = m.exit_status;
		*recorded_ms = m.duration_ms;
	}
out:
	if (cas >= 0)
		close(cas);
	close(dir);
	free(text);
	manifest_release(&m);
	return ret;
}

int wrapper_main(const struct client_config *config, int argc, char **argv)
{
	struct invocation_options options = { .cache_dir = config->cache_dir, .envp = environ };
	struct stats_delta delta = { .not_cacheable = -1 };
	struct invocation inv;
	char key_hex[DIGEST_HEX_SIZE], err[512], direct_dir[PATH_MAX];
	uint64_t t0 = monotonic_us(), t_serve, recorded_ms = 0;
	int status = 0, ret;
	enum submit_result submitted;

	if (config->disable)
		return exec_rustc(argv);
	if (config->cache_dir
	    && snprintf(direct_dir, sizeof(direct_dir), "%s/direct", config->cache_dir) < (int)sizeof(direct_dir)) {
		options.direct_dir = direct_dir;
		options.use_direct = config->direct;
	}
	/* At most twice: a direct key serves hits only, so a miss on one takes the full dep-info
	 * pass (which also records the input list for next time) and looks again. */
	for (;;) {
		ret = invocation_build(&inv, argv[0], argc - 1, argv + 1, &options);
		if (ret < 0) {
			snprintf(err, sizeof(err), "%s", strerror(-ret));
			goto fallback;
		}
		if (inv.reason != RUSTC_CACHEABLE) {
			delta.not_cacheable = inv.reason;
			log_line(config, "not cacheable (%s: %s): %s", rustc_reason_name(inv.reason),
				 inv.reason_detail, inv.args.crate_name ? inv.args.crate_name : "-");
			invocation_release(&inv);
			stats_record(config, &delta);
			return exec_rustc(argv);
		}
		digest_to_hex(inv.key, key_hex);
		t_serve = monotonic_us();
		ret = serve_from_mount(config, &inv, &status, &delta, &recorded_ms);
		if (ret == 0) {
			delta.hits = 1;
			delta.us_from_cache = monotonic_us() - t0;
			delta.us_saved_estimate = recorded_ms * 1000;
			/* The split is what bench/run reports as the cost of a hit. */
			log_line(config, "hit %s %s (%.1f ms, %s, toolchain %.2f ms, dep-info %.2f ms, "
				 "inputs+key %.2f ms, serve %.2f ms)", key_hex, inv.args.crate_name,
				 delta.us_from_cache / 1e3, inv.direct ? "direct" : "full pass",
				 inv.us_toolchain / 1e3, inv.us_dep_info / 1e3, inv.us_hash / 1e3,
				 (monotonic_us() - t_serve) / 1e3);
			goto done;
		}
		if (ret != -ENOENT) {
			snprintf(err, sizeof(err), "the mount at %s cannot serve %.16s: %s", config->mount,
				 key_hex, strerror(-ret));
			goto fallback;
		}
		if (!inv.direct)
			break;
		invocation_release(&inv);
		options.use_direct = 0;
	}

	submitted = submit_via_helper(config, &inv, err, sizeof(err));
	if (submitted == SUBMIT_COMPILE_FAILED) {
		/* rustc failed in the sandbox: run it here, where the user sees its messages. */
		delta.compile_failures = 1;
		delta.fallbacks = 1;
		log_line(config, "compile failed in the sandbox %s %s: %s", key_hex, inv.args.crate_name, err);
		invocation_release(&inv);
		stats_record(config, &delta);
		return exec_rustc(argv);
	}
	if (submitted != SUBMIT_OK)
		goto fallback;
	ret = serve_from_mount(config, &inv, &status, &delta, &recorded_ms);
	if (ret < 0) {
		snprintf(err, sizeof(err), "published %.16s but the mount at %s cannot serve it: %s", key_hex,
			 config->mount, strerror(-ret));
		goto fallback;
	}
	delta.misses = 1;
	delta.us_from_cache = monotonic_us() - t0;
	log_line(config, "miss %s %s (%.1f ms)", key_hex, inv.args.crate_name, delta.us_from_cache / 1e3);
done:
	invocation_release(&inv);
	stats_record(config, &delta);
	return status;

fallback:
	fprintf(stderr, "cachepot: warning: %s; compiling locally\n", err);
	log_line(config, "fallback: %s", err);
	delta.fallbacks = 1;
	delta.errors = 1;
	invocation_release(&inv);
	stats_record(config, &delta);
	return exec_rustc(argv);
}
