/* From a local C or C++ compile to a job; see c_invocation.h. */
#include "config.h"

#include "hash/c_invocation.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/path.h"

/* The names in a unit directory besides the unit itself. */
#define RAW_UNIT_NAME "preprocessed"
#define STDERR_NAME "preprocessor-stderr"

__attribute__((format(printf, 3, 4)))
static void not_cacheable(struct c_invocation *ci, enum c_reason reason, const char *fmt, ...)
{
	va_list ap;
	if (ci->reason != C_CACHEABLE)
		return;
	ci->reason = reason;
	va_start(ap, fmt);
	vsnprintf(ci->reason_detail, sizeof(ci->reason_detail), fmt, ap);
	va_end(ap);
}

static const char *env_value(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* Remove the unit directory DIR and the files in it (it has no subdirectory). */
static void remove_unit_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

void c_invocation_release(struct c_invocation *ci)
{
	if (ci->unit_dir)
		remove_unit_dir(ci->unit_dir);
	free(ci->unit_dir);
	free(ci->preprocessor_stderr);
	c_args_release(&ci->args);
	invocation_release(&ci->inv);
	memset(ci, 0, sizeof(*ci));
}

/* --- line markers ----------------------------------------------------------------------------- */

/* A growing output buffer; FAILED once an allocation failed. */
struct text_buffer {
	char *data;
	size_t len, cap;
	int failed;
};

static void text_append(struct text_buffer *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *grown;
		while (cap < b->len + n + 1) {
			if (__builtin_mul_overflow(cap, 2, &cap)) {
				b->failed = 1;
				return;
			}
		}
		grown = realloc(b->data, cap);
		if (!grown) {
			b->failed = 1;
			return;
		}
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* The root of MAP with the longest local prefix that the LEN bytes at PATH start with, at a
 * component boundary; NULL when none. A root at "/" is never taken: it would map the system
 * headers' paths, which are the same on every machine, away from where the compiler put them. */
static const struct path_root *root_of(const struct path_map *map, const char *path, size_t len)
{
	const struct path_root *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < map->n; i++) {
		const struct path_root *r = &map->roots[i];
		size_t n = strlen(r->local);
		if (n <= 1 || n > len || n <= best_len || memcmp(path, r->local, n) != 0)
			continue;
		if (n < len && path[n] != '/')
			continue;
		best = r;
		best_len = n;
	}
	return best;
}

/* The quoted file name of the line marker at LINE (LEN bytes, "# 12 "name" flags" or
 * "#line 12 "name""): *NAME and *NAME_LEN (still escaped), 1; 0 when LINE is not a marker. */
static int marker_name(const char *line, size_t len, const char **name, size_t *name_len)
{
	const char *p = line, *end = line + len, *digits;

	if (p >= end || *p++ != '#')
		return 0;
	if (end - p >= 4 && memcmp(p, "line", 4) == 0)
		p += 4;
	if (p >= end || *p++ != ' ')
		return 0;
	for (digits = p; p < end && *p >= '0' && *p <= '9'; p++)
		;
	if (p == digits || end - p < 2 || p[0] != ' ' || p[1] != '"')
		return 0;
	p += 2;
	*name = p;
	while (p < end && *p != '"' && *p != '\n') {
		if (*p == '\\' && p + 1 < end)
			p++;
		p++;
	}
	if (p >= end || *p != '"')
		return 0;
	*name_len = (size_t)(p - *name);
	return 1;
}

int c_unit_map_line_markers(const struct path_map *map, const char *text, size_t len, char **out, size_t *outlen)
{
	struct text_buffer b = { 0 };
	const char *p = text, *end = text + len;

	*out = NULL;
	*outlen = 0;
	text_append(&b, "", 0);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl + 1 : end;
		const struct path_root *root = NULL;
		const char *name = NULL;
		size_t name_len = 0;

		if (marker_name(p, (size_t)(line_end - p), &name, &name_len))
			root = root_of(map, name, name_len);
		if (root) {
			text_append(&b, p, (size_t)(name - p));
			text_append(&b, root->canonical, strlen(root->canonical));
			p = name + strlen(root->local);
		}
		text_append(&b, p, (size_t)(line_end - p));
		p = line_end;
	}
	if (b.failed) {
		free(b.data);
		return -ENOMEM;
	}
	*out = b.data;
	*outlen = b.len;
	return 0;
}

/* --- the preprocessor ------------------------------------------------------------------------- */

/* The depfile -MD writes when no -MF names it: the object's name with its suffix replaced by
 * ".d" (gcc's and clang's rule). */
static char *default_depfile(const char *object)
{
	const char *slash = strrchr(object, '/');
	const char *base = slash ? slash + 1 : object;
	const char *dot = strrchr(base, '.');
	size_t keep = dot && dot != base ? (size_t)(dot - object) : strlen(object);
	char *d = NULL;

	if (asprintf(&d, "%.*s.d", (int)keep, object) < 0)
		return NULL;
	return d;
}

/* Run the preprocessor: the command line with -c as -E and the object as RAW, the depfile's
 * target and name made explicit (the driver derives both from -o, which now names the unit).
 * Standard output and input are /dev/null, standard error goes to the unit directory.
 * *STATUS is the exit status (-1 when killed). Returns 0 or -errno when it could not run. */
static int run_preprocessor(struct c_invocation *ci, const char *driver, const char *name, char *const *envp,
			    const char *raw, const char *err_path, int *status)
{
	const struct c_args *a = &ci->args;
	char **argv = calloc(a->argc + 8, sizeof(*argv));
	char *depfile = NULL;
	posix_spawn_file_actions_t fa;
	size_t n = 0;
	pid_t pid;
	int ret, wstatus;

	if (!argv)
		return -ENOMEM;
	argv[n++] = (char *)name;
	for (size_t i = 0; i < a->argc; i++) {
		char *arg = a->argv[i];
		if (a->roles[i] != C_ROLE_DRIVER) {
			argv[n++] = arg;
		} else if (strcmp(arg, "-c") == 0) {
			argv[n++] = "-E";
		} else if (strncmp(arg, "-o", 2) == 0) {
			argv[n++] = "-o";
			argv[n++] = (char *)raw;
			if (arg[2] == '\0')
				i++;
		} else {
			argv[n++] = arg; /* -x and its value, the source */
		}
	}
	if (a->depfile && !a->depfile_target_named) {
		argv[n++] = "-MQ";
		argv[n++] = (char *)a->output;
	}
	if (a->depfile && !a->depfile_named) {
		depfile = default_depfile(a->output);
		if (!depfile) {
			free(argv);
			return -ENOMEM;
		}
		argv[n++] = "-MF";
		argv[n++] = depfile;
	}
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	ret = -posix_spawn(&pid, driver, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(argv);
	free(depfile);
	if (ret < 0)
		return ret;
	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			return -errno;
	*status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	return 0;
}

/* Is the driver a C++ one? Its name as called or its file says so ("c++", "g++", "clang++"). */
static int is_cxx_driver(const char *name, const char *driver)
{
	const char *slash = strrchr(name, '/');
	char *real = realpath(driver, NULL);
	int cxx = strstr(slash ? slash + 1 : name, "++") != NULL;

	if (real) {
		slash = strrchr(real, '/');
		cxx |= strstr(slash ? slash + 1 : real, "++") != NULL;
		free(real);
	}
	return cxx;
}

/* The unit's name in the job: the source's, its suffix ".i" (C) or ".ii" (C++). */
static char *unit_name(const struct c_args *a)
{
	const char *slash = strrchr(a->source, '/');
	const char *base = slash ? slash + 1 : a->source;
	const char *dot = strrchr(base, '.');
	size_t keep = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	char *name = NULL;

	if (asprintf(&name, "%.*s%s", (int)keep, base, a->language == C_LANG_CXX ? ".ii" : ".i") < 0)
		return NULL;
	if (!path_component_valid(name, strlen(name))) {
		free(name);
		name = strdup(a->language == C_LANG_CXX ? "unit.ii" : "unit.i");
	}
	return name;
}

/* The job's argv: the driver at its root, the options of the compile proper in their order,
 * then the unit's language, -c, the unit and the object. */
static int build_job_argv(struct c_invocation *ci, int cxx_driver, const char *unit, const char *object)
{
	struct job *job = &ci->inv.job;
	const struct c_args *a = &ci->args;

	job->argv = calloc(a->argc + 8, sizeof(*job->argv));
	if (!job->argv)
		return -ENOMEM;
#define PUSH(s) do { if (!(job->argv[job->argc] = (s))) return -ENOMEM; job->argc++; } while (0)
	PUSH(strdup(cxx_driver ? ROOT_CXX_DRIVER : ROOT_C_DRIVER));
	for (size_t i = 0; i < a->argc; i++)
		if (a->roles[i] == C_ROLE_BOTH)
			PUSH(strdup(a->argv[i]));
	PUSH(strdup("-x"));
	PUSH(strdup(a->language == C_LANG_CXX ? "c++-cpp-output" : "cpp-output"));
	PUSH(strdup("-c"));
	{
		char *path = NULL;
		PUSH(asprintf(&path, "%s/%s", ROOT_C_UNIT, unit) < 0 ? NULL : path);
	}
	PUSH(strdup("-o"));
	{
		char *path = NULL;
		PUSH(asprintf(&path, "%s/%s", ROOT_OUT, object) < 0 ? NULL : path);
	}
#undef PUSH
	return 0;
}

/* The object's directory (CI->inv.out_dir) and name (*OBJECT, pointing into *NORM, which the
 * caller frees). 1 when the object cannot be a job's output (a reason is set). */
static int locate_object(struct c_invocation *ci, char **norm, const char **object)
{
	char *slash;
	size_t len;
	int ret = path_normalise(ci->args.output, ci->inv.cwd, norm);

	if (ret < 0)
		return ret;
	slash = strrchr(*norm, '/');
	*object = slash + 1;
	len = strlen(*object);
	if (!path_component_valid(*object, len) || (len >= 2 && strcmp(*object + len - 2, ".d") == 0)) {
		not_cacheable(ci, C_NC_UNSUPPORTED, "the object %.200s", ci->args.output);
		return 1;
	}
	ci->inv.out_dir = slash == *norm ? strdup("/") : strndup(*norm, (size_t)(slash - *norm));
	return ci->inv.out_dir ? 0 : -ENOMEM;
}

static int build_rewrite_map(struct invocation *inv)
{
	int ret = path_map_add(&inv->rewrite, inv->out_dir, ROOT_OUT);
	for (size_t i = 0; ret == 0 && i < inv->map.n; i++)
		ret = path_map_add(&inv->rewrite, inv->map.roots[i].local, inv->map.roots[i].canonical);
	return ret;
}

/* Preprocess into the unit directory and write the unit with its markers mapped: *UNIT_TEXT
 * (malloc'd) of *UNIT_LEN bytes, at UNIT_LOCAL. A preprocessor that fails sets a reason. */
static int preprocess(struct c_invocation *ci, const char *driver, const char *name, char *const *envp,
		      const char *unit, char *unit_local, size_t unit_local_len, char **unit_text, size_t *unit_len)
{
	char raw[PATH_MAX], err_path[PATH_MAX], tmpl[PATH_MAX];
	const char *tmpdir = env_value(envp, "TMPDIR");
	char *text = NULL;
	size_t len = 0;
	int status = 0, fd, ret;

	*unit_text = NULL;
	if (!tmpdir || tmpdir[0] != '/')
		tmpdir = "/tmp";
	if (snprintf(tmpl, sizeof(tmpl), "%s/cachepot-cc.XXXXXX", tmpdir) >= (int)sizeof(tmpl) || !mkdtemp(tmpl)) {
		not_cacheable(ci, C_NC_PREPROCESSOR, "no temporary directory in %.200s", tmpdir);
		return 0;
	}
	ci->unit_dir = strdup(tmpl);
	if (!ci->unit_dir) {
		rmdir(tmpl);
		return -ENOMEM;
	}
	if (snprintf(raw, sizeof(raw), "%s/%s", tmpl, RAW_UNIT_NAME) >= (int)sizeof(raw)
	    || snprintf(err_path, sizeof(err_path), "%s/%s", tmpl, STDERR_NAME) >= (int)sizeof(err_path)
	    || snprintf(unit_local, unit_local_len, "%s/%s", tmpl, unit) >= (int)unit_local_len)
		return -ENAMETOOLONG;
	ret = run_preprocessor(ci, driver, name, envp, raw, err_path, &status);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0 || status != 0) {
		if (ret < 0)
			not_cacheable(ci, C_NC_PREPROCESSOR, "cannot run %.200s: %s", driver, strerror(-ret));
		else
			not_cacheable(ci, C_NC_PREPROCESSOR, "the preprocessor exited with %d", status);
		return 0;
	}
	ret = io_read_file_at(AT_FDCWD, err_path, O_NOFOLLOW, C_PREPROCESSOR_STDERR_MAX, &ci->preprocessor_stderr,
			      &ci->preprocessor_stderr_len);
	if (ret == 0)
		ret = io_read_file_at(AT_FDCWD, raw, O_NOFOLLOW, C_UNIT_MAX, &text, &len);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		not_cacheable(ci, C_NC_PREPROCESSOR, "the preprocessed unit: %s", strerror(-ret));
		free(text);
		return 0;
	}
	unlink(raw);
	ret = c_unit_map_line_markers(&ci->inv.map, text, len, unit_text, unit_len);
	free(text);
	if (ret < 0)
		return ret;
	fd = open(unit_local, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = io_write_all(fd, *unit_text, *unit_len);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

int c_invocation_build(struct c_invocation *ci, const char *driver, const char *name, int argc, char *const *argv,
		       const struct c_invocation_options *options)
{
	static const char *const refused_env[] = { "GCC_EXEC_PREFIX", "COMPILER_PATH" };
	struct invocation *inv = &ci->inv;
	char cwd[PATH_MAX], unit_local[PATH_MAX];
	char *norm = NULL, *unit = NULL, *unit_text = NULL;
	const char *object = NULL;
	size_t unit_len = 0;
	int cxx_driver, ret;
	uint64_t t0;

	memset(ci, 0, sizeof(*ci));
	ci->args.source_index = -1;
	inv->envp = options->envp;
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	ret = path_normalise(cwd, NULL, &inv->cwd);
	if (ret == 0)
		ret = c_args_parse(&ci->args, argc, argv);
	if (ret < 0)
		return ret;
	if (ci->args.reason != C_CACHEABLE) {
		ci->reason = ci->args.reason;
		snprintf(ci->reason_detail, sizeof(ci->reason_detail), "%s", ci->args.reason_detail);
		return 0;
	}
	/* They move where the driver finds cc1 and as: the C part would not be what runs here. */
	for (size_t i = 0; i < sizeof(refused_env) / sizeof(refused_env[0]); i++)
		if (env_value(options->envp, refused_env[i])) {
			not_cacheable(ci, C_NC_ENVIRONMENT, "%s is set", refused_env[i]);
			return 0;
		}
	ret = locate_object(ci, &norm, &object);
	if (ret != 0) {
		ret = ret > 0 ? 0 : ret;
		goto out;
	}

	t0 = monotonic_us();
	cxx_driver = is_cxx_driver(name, driver);
	ret = toolchain_c_get(driver, cxx_driver ? TOOLCHAIN_CXX_DRIVER : TOOLCHAIN_C_DRIVER,
			      ci->args.language == C_LANG_CXX ? "cc1plus" : "cc1", options->cache_dir, &inv->toolchain);
	ci->us_toolchain = monotonic_us() - t0;
	if (ret == -ENOMEM)
		goto out;
	if (ret < 0) {
		not_cacheable(ci, C_NC_TOOLCHAIN, "the compiler %.200s cannot be collected: %s", driver, strerror(-ret));
		ret = 0;
		goto out;
	}
	inv->job.kind = JOB_KIND_C;
	memcpy(inv->job.toolchain, inv->toolchain.id, DIGEST_HEX_SIZE);

	ret = invocation_map_roots(&inv->map, inv->cwd, inv->out_dir, options->envp,
				   options->registry ? options->registry : DEBIAN_REGISTRY, NULL);
	if (ret == 0)
		ret = build_rewrite_map(inv);
	if (ret == 0)
		ret = path_map_to_canonical(&inv->map, inv->cwd, &inv->job.cwd);
	if (ret < 0)
		goto out;
	unit = unit_name(&ci->args);
	if (!unit) {
		ret = -ENOMEM;
		goto out;
	}

	t0 = monotonic_us();
	ret = preprocess(ci, driver, name, options->envp, unit, unit_local, sizeof(unit_local), &unit_text, &unit_len);
	ci->us_preprocess = monotonic_us() - t0;
	if (ret < 0 || ci->reason != C_CACHEABLE)
		goto out;

	t0 = monotonic_us();
	ret = build_job_argv(ci, cxx_driver, unit, object);
	if (ret < 0)
		goto out;
	inv->job.env = calloc(1, sizeof(*inv->job.env));
	inv->job.inputs = calloc(1, sizeof(*inv->job.inputs));
	inv->input_local = calloc(1, sizeof(*inv->input_local));
	if (!inv->job.env || !inv->job.inputs || !inv->input_local) {
		ret = -ENOMEM;
		goto out;
	}
	inv->job.env[0].name = strdup("PATH");
	inv->job.env[0].value = strdup(ROOT_LINK_PATH);
	inv->job.n_env = 1;
	inv->job.inputs[0].mode = 0644;
	if (asprintf(&inv->job.inputs[0].path, "%s/%s", ROOT_C_UNIT, unit) < 0)
		inv->job.inputs[0].path = NULL;
	inv->job.n_inputs = 1;
	inv->input_local[0] = strdup(unit_local);
	if (!inv->job.env[0].name || !inv->job.env[0].value || !inv->job.inputs[0].path || !inv->input_local[0]) {
		ret = -ENOMEM;
		goto out;
	}
	ret = digest_buffer(unit_text, unit_len, inv->job.inputs[0].sha256);
	if (ret == 0 && job_normalise(&inv->job) < 0)
		ret = -EINVAL;
	if (ret == 0)
		ret = job_key(&inv->job, inv->key, NULL);
	ci->us_hash = monotonic_us() - t0;
out:
	free(norm);
	free(unit);
	free(unit_text);
	return ret;
}
