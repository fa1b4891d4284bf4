/* From a local rustc invocation to a job; see invocation.h. */
#include "config.h"

#include "hash/invocation.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "base/clock.h"
#include "base/io.h"
#include "hash/depinfo.h"
#include "hash/prekey.h"

#include <jansson.h>

__attribute__((format(printf, 3, 4)))
static void not_cacheable(struct invocation *inv, enum rustc_reason reason, const char *fmt, ...)
{
	va_list ap;
	if (inv->reason != RUSTC_CACHEABLE)
		return;
	inv->reason = reason;
	va_start(ap, fmt);
	vsnprintf(inv->reason_detail, sizeof(inv->reason_detail), fmt, ap);
	va_end(ap);
}

void invocation_release(struct invocation *inv)
{
	if (inv->input_local)
		for (size_t i = 0; i < inv->job.n_inputs; i++)
			free(inv->input_local[i]);
	free(inv->input_local);
	job_release(&inv->job);
	path_map_release(&inv->map);
	path_map_release(&inv->rewrite);
	toolchain_release(&inv->toolchain);
	toolchain_release(&inv->link);
	free(inv->linker);
	rustc_args_release(&inv->args);
	free(inv->rustc);
	free(inv->cwd);
	free(inv->out_dir);
	json_decref(inv->direct_list);
	memset(inv, 0, sizeof(*inv));
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}


int rustc_resolve(const char *rustc, char **out)
{
	char path[PATH_MAX], sysroot[PATH_MAX];
	char *real = realpath(rustc, NULL);
	char *argv[] = { NULL, "--print", "sysroot", NULL };
	extern char **environ;
	struct stat st;
	int ret;

	*out = NULL;
	if (!real)
		return -errno;
	/* A real rustc is <sysroot>/bin/rustc, next to <sysroot>/lib/rustlib. */
	if (snprintf(path, sizeof(path), "%s", real) < (int)sizeof(path) && strrchr(path, '/')) {
		*strrchr(path, '/') = '\0';
		size_t n = strlen(path);
		if (n + sizeof("/../lib/rustlib") < sizeof(path))
			memcpy(path + n, "/../lib/rustlib", sizeof("/../lib/rustlib"));
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		*out = real;
		return 0;
	}
	/* Run it by the name it was given: a rustup proxy is a link to rustup, which tells what
	 * to be from argv[0]. */
	free(real);
	argv[0] = (char *)rustc;
	ret = io_run_capture(argv, environ, 0, sysroot, sizeof(sysroot), NULL);
	if (ret != 0)
		return ret < 0 ? ret : -ENOEXEC;
	sysroot[strcspn(sysroot, "\n")] = '\0';
	if (sysroot[0] != '/' || snprintf(path, sizeof(path), "%s/bin/rustc", sysroot) >= (int)sizeof(path))
		return -ENOEXEC;
	*out = realpath(path, NULL);
	return *out ? 0 : -errno;
}

/* The cargo target dir holding DIR: the nearest ancestor with cargo's CACHEDIR.TAG. */
static char *find_target_dir(const char *dir)
{
	char *p = strdup(dir);
	while (p && strcmp(p, "/") != 0) {
		char tag[PATH_MAX];
		char *slash;
		if (snprintf(tag, sizeof(tag), "%s/CACHEDIR.TAG", p) < (int)sizeof(tag) && access(tag, F_OK) == 0)
			return p;
		slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
	}
	free(p);
	return NULL;
}

/* Map one argument: a path as the whole argument, or after the first '=' ("-L dependency=/x",
 * "name=/x"). Outside every root: not cacheable. *OUT is the new argument. */
static int map_arg(struct invocation *inv, const char *arg, char **out)
{
	const char *path = NULL;
	char *norm = NULL, *mapped = NULL;
	int ret;

	*out = NULL;
	if (arg[0] == '/') {
		path = arg;
	} else {
		const char *eq = strchr(arg, '=');
		if (eq && eq[1] == '/')
			path = eq + 1;
	}
	if (!path) {
		*out = strdup(arg);
		return *out ? 0 : -ENOMEM;
	}
	ret = path_normalise(path, NULL, &norm);
	if (ret < 0)
		return ret;
	ret = path_map_to_canonical(&inv->map, norm, &mapped);
	free(norm);
	if (ret == -ENOENT) {
		not_cacheable(inv, RUSTC_NC_PATH_OUTSIDE, "argument %.200s", arg);
		*out = strdup(arg);
		return *out ? 0 : -ENOMEM;
	}
	if (ret < 0)
		return ret;
	if (asprintf(out, "%.*s%s", (int)(path - arg), arg, mapped) < 0)
		*out = NULL;
	free(mapped);
	return *out ? 0 : -ENOMEM;
}

/* Map a path-valued part of an argument: PREFIX (kept as written) then PATH. An absolute PATH
 * is mapped; a relative one is kept when it names the same file inside the sandbox (relative
 * to the canonical cwd), otherwise it becomes the canonical absolute path (a relative
 * "target/debug/deps" must point into /cachepot/target, not /cachepot/cwd/target). */
static int map_path_value(struct invocation *inv, const char *prefix, size_t prefix_len, const char *path,
			  char **out)
{
	char *abs = NULL, *canonical = NULL, *rel_in_sandbox = NULL;
	int ret;

	*out = NULL;
	ret = path_normalise(path, inv->cwd, &abs);
	if (ret < 0)
		return ret;
	ret = path_map_to_canonical(&inv->map, abs, &canonical);
	free(abs);
	if (ret == -ENOENT) {
		not_cacheable(inv, RUSTC_NC_PATH_OUTSIDE, "argument %.*s%.200s", (int)prefix_len, prefix, path);
		ret = asprintf(out, "%.*s%s", (int)prefix_len, prefix, path) < 0 ? -ENOMEM : 0;
		return ret;
	}
	if (ret < 0)
		return ret;
	if (path[0] != '/') {
		ret = path_normalise(path, inv->job.cwd, &rel_in_sandbox);
		if (ret < 0) {
			free(canonical);
			return ret;
		}
		if (strcmp(rel_in_sandbox, canonical) == 0) {
			free(canonical);
			canonical = strdup(path);
		}
		free(rel_in_sandbox);
	}
	if (!canonical || asprintf(out, "%.*s%s", (int)prefix_len, prefix, canonical) < 0)
		*out = NULL;
	free(canonical);
	return *out ? 0 : -ENOMEM;
}

/* The value of "-L [kind=]path" or "--extern name=path": the part after '=' when there is one. */
static int map_keyed_path(struct invocation *inv, const char *value, int need_eq, char **out)
{
	const char *eq = strchr(value, '=');
	if (!eq) {
		if (need_eq) {
			*out = strdup(value);
			return *out ? 0 : -ENOMEM;
		}
		return map_path_value(inv, "", 0, value, out);
	}
	return map_path_value(inv, value, (size_t)(eq + 1 - value), eq + 1, out);
}

static int build_argv(struct invocation *inv)
{
	struct job *job = &inv->job;
	size_t n = inv->args.argc;
	enum { PLAIN, LIBPATH, EXTERN, TARGET } next = PLAIN;

	job->argv = calloc(n + 1, sizeof(*job->argv));
	if (!job->argv)
		return -ENOMEM;
	job->argv[0] = strdup(ROOT_RUSTC);
	if (!job->argv[0])
		return -ENOMEM;
	job->argc = 1;
	for (size_t i = 0; i < n; i++) {
		const char *a = inv->args.argv[i];
		char *mapped = NULL;
		int ret;
		if ((int)i == inv->args.out_dir_index) {
			mapped = strncmp(a, "--out-dir=", 10) == 0 ? strdup("--out-dir=" ROOT_OUT)
								   : strdup(ROOT_OUT);
			ret = mapped ? 0 : -ENOMEM;
		} else if ((int)i == inv->args.input_index) {
			ret = map_path_value(inv, "", 0, a, &mapped);
		} else if (next == LIBPATH) {
			ret = map_keyed_path(inv, a, 0, &mapped);
		} else if (next == EXTERN) {
			ret = map_keyed_path(inv, a, 1, &mapped);
		} else if (next == TARGET && strlen(a) > 5 && strcmp(a + strlen(a) - 5, ".json") == 0) {
			ret = map_path_value(inv, "", 0, a, &mapped);
		} else if (strncmp(a, "-L", 2) == 0 && a[2] != '\0') {
			mapped = NULL;
			ret = map_keyed_path(inv, a + 2, 0, &mapped);
			if (ret == 0) {
				char *full = NULL;
				if (asprintf(&full, "-L%s", mapped) < 0)
					full = NULL;
				free(mapped);
				mapped = full;
				ret = mapped ? 0 : -ENOMEM;
			}
		} else {
			ret = map_arg(inv, a, &mapped);
		}
		if (ret < 0)
			return ret;
		next = strcmp(a, "-L") == 0 ? LIBPATH : strcmp(a, "--extern") == 0 ? EXTERN
			: strcmp(a, "--target") == 0 ? TARGET : PLAIN;
		job->argv[job->argc++] = mapped;
	}
	return 0;
}

/* The dep-info pass: rustc with the same arguments but --emit=dep-info=TMP and
 * -Z binary-dep-depinfo, RUSTC_BOOTSTRAP=1 for this run only. */
static int run_dep_info(struct invocation *inv, char *const *envp, struct depinfo *d)
{
	char dir[] = "/tmp/cachepot-depinfo.XXXXXX";
	char file[sizeof(dir) + 16], emit[sizeof(file) + 32];
	char **argv = NULL, **env = NULL;
	size_t n = 0, n_env = 0;
	char *text = NULL;
	size_t len = 0;
	int ret;

	memset(d, 0, sizeof(*d));
	if (!mkdtemp(dir))
		return -errno;
	snprintf(file, sizeof(file), "%s/dep.d", dir);
	snprintf(emit, sizeof(emit), "--emit=dep-info=%s", file);
	argv = calloc(inv->args.argc + 5, sizeof(*argv));
	for (char *const *e = envp; e && *e; e++)
		n_env++;
	env = calloc(n_env + 2, sizeof(*env));
	if (!argv || !env) {
		ret = -ENOMEM;
		goto out;
	}
	argv[n++] = inv->rustc;
	for (size_t i = 0; i < inv->args.argc; i++) {
		const char *a = inv->args.argv[i];
		if (strcmp(a, "--emit") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--emit=", 7) == 0)
			continue;
		argv[n++] = (char *)a;
	}
	argv[n++] = emit;
	argv[n++] = "-Zbinary-dep-depinfo";
	argv[n] = NULL;
	n_env = 0;
	for (char *const *e = envp; e && *e; e++)
		if (strncmp(*e, "RUSTC_BOOTSTRAP=", 16) != 0)
			env[n_env++] = *e;
	env[n_env++] = "RUSTC_BOOTSTRAP=1";
	env[n_env] = NULL;

	ret = io_run_capture(argv, env, 0, NULL, 0, NULL);
	if (ret != 0) {
		not_cacheable(inv, RUSTC_NC_DEP_INFO, "the dep-info pass exited with %d", ret);
		ret = 0;
		goto out;
	}
	ret = io_read_file_at(AT_FDCWD, file, O_NOFOLLOW, DEPINFO_TEXT_MAX, &text, &len);
	if (ret == -ENOMEM)
		goto out;
	if (ret < 0) {
		not_cacheable(inv, RUSTC_NC_DEP_INFO, "no usable dep-info file: %s", strerror(-ret));
		ret = 0;
		goto out;
	}
	ret = depinfo_parse(text, len, d);
	if (ret == -EINVAL || ret == -E2BIG) {
		not_cacheable(inv, RUSTC_NC_DEP_INFO, "malformed dep-info: %s", strerror(-ret));
		ret = 0;
	}
out:
	unlink(file);
	rmdir(dir);
	free(text);
	free(argv);
	free(env);
	return ret;
}

/* Inputs being gathered, before they join the job: each canonical input with its local path
 * beside it. Owns its arrays until input_set_adopt hands them to the job. */
struct input_set {
	struct job_input *inputs;
	char **local;
	size_t n;
};

static void input_set_release(struct input_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->inputs[i].path);
		free(set->local[i]);
	}
	free(set->inputs);
	free(set->local);
	memset(set, 0, sizeof(*set));
}

/* Why a file cannot be an input; what it makes of the invocation is the caller's call. */
struct input_refusal {
	enum rustc_reason reason;
	char detail[256];
};

__attribute__((format(printf, 3, 4)))
static int input_refuse(struct input_refusal *why, enum rustc_reason reason, const char *fmt, ...)
{
	va_list ap;
	why->reason = reason;
	va_start(ap, fmt);
	vsnprintf(why->detail, sizeof(why->detail), fmt, ap);
	va_end(ap);
	return 1;
}

/* Add the local file PATH (absolute, normalised) to SET, hashed, unless it is in the sysroot or
 * already there. Returns 0, 1 when the file cannot be an input (WHY says why; SET unchanged), or
 * -ENOMEM. */
static int input_set_add(struct input_set *set, const struct path_map *map, const char *path,
			 struct input_refusal *why)
{
	struct job_input *grown;
	char **grown_local;
	char *canonical = NULL;
	struct stat st;
	uint64_t size;
	int fd, ret;

	ret = path_map_to_canonical(map, path, &canonical);
	if (ret == -ENOENT)
		return input_refuse(why, RUSTC_NC_PATH_OUTSIDE, "input %.200s", path);
	if (ret < 0)
		return ret;
	if (strncmp(canonical, ROOT_SYSROOT "/", sizeof(ROOT_SYSROOT)) == 0) {
		free(canonical);
		return 0;
	}
	if (!job_path_valid(canonical)) {
		ret = input_refuse(why, RUSTC_NC_PATH_OUTSIDE, "input %.200s maps to %.200s", path, canonical);
		free(canonical);
		return ret;
	}
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->inputs[i].path, canonical) == 0) {
			free(canonical);
			return 0;
		}
	if (set->n >= JOB_INPUTS_MAX) {
		free(canonical);
		return input_refuse(why, RUSTC_NC_UNSUPPORTED, "more than %d inputs", JOB_INPUTS_MAX);
	}
	grown = realloc(set->inputs, (set->n + 1) * sizeof(*grown));
	if (grown)
		set->inputs = grown;
	grown_local = realloc(set->local, (set->n + 1) * sizeof(*grown_local));
	if (grown_local)
		set->local = grown_local;
	if (!grown || !grown_local) {
		free(canonical);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		free(canonical);
		return input_refuse(why, RUSTC_NC_DEP_INFO, "input %.200s is not a readable file", path);
	}
	memset(&set->inputs[set->n], 0, sizeof(set->inputs[0]));
	ret = digest_fd(fd, set->inputs[set->n].sha256, &size);
	close(fd);
	if (ret < 0) {
		free(canonical);
		return input_refuse(why, RUSTC_NC_DEP_INFO, "reading %.200s: %s", path, strerror(-ret));
	}
	set->local[set->n] = strdup(path);
	if (!set->local[set->n]) {
		free(canonical);
		return -ENOMEM;
	}
	set->inputs[set->n].path = canonical;
	set->inputs[set->n].mode = (st.st_mode & 0111) ? 0755 : 0644;
	set->n++;
	return 0;
}

/* Make SET the job's inputs (the job has none yet); SET is left empty. */
static void input_set_adopt(struct invocation *inv, struct input_set *set)
{
	inv->job.inputs = set->inputs;
	inv->input_local = set->local;
	inv->job.n_inputs = set->n;
	memset(set, 0, sizeof(*set));
}

/* A file the full pass found rustc reading: an input, or the reason the invocation is not
 * cacheable. */
static int add_local_input(struct invocation *inv, struct input_set *set, const char *path)
{
	struct input_refusal why;
	char *norm = NULL;
	int ret = path_normalise(path, inv->cwd, &norm);
	if (ret == 0)
		ret = input_set_add(set, &inv->map, norm, &why);
	free(norm);
	if (ret == 1) {
		not_cacheable(inv, why.reason, "%s", why.detail);
		ret = 0;
	}
	return ret;
}

static int add_env(struct invocation *inv, const char *name, size_t name_len, const char *value)
{
	struct job *job = &inv->job;
	struct job_env *grown;
	char *mapped = NULL;

	for (size_t i = 0; i < job->n_env; i++)
		if (strlen(job->env[i].name) == name_len && strncmp(job->env[i].name, name, name_len) == 0)
			return 0;
	/* A crate that reads a credential (env!, option_env!) compiles here, where it is; the
	 * value is never sent. Only the name is shown. */
	if (env_is_credential(name, name_len)) {
		not_cacheable(inv, RUSTC_NC_UNSUPPORTED, "the crate reads %.*s, which may hold a credential",
			      (int)(name_len < 128 ? name_len : 128), name);
		return 0;
	}
	if (job->n_env >= JOB_ENV_MAX || strlen(value) > JOB_ENV_LEN_MAX) {
		not_cacheable(inv, RUSTC_NC_UNSUPPORTED, "environment too large");
		return 0;
	}
	/* Absolute paths under a root are mapped, so CARGO_MANIFEST_DIR and OUT_DIR do not tie
	 * a key to a checkout's location. */
	if (value[0] == '/') {
		char *norm = NULL;
		int ret = path_normalise(value, NULL, &norm);
		if (ret < 0)
			return ret;
		ret = path_map_to_canonical(&inv->map, norm, &mapped);
		free(norm);
		if (ret < 0 && ret != -ENOENT)
			return ret;
	}
	grown = realloc(job->env, (job->n_env + 1) * sizeof(*grown));
	if (!grown) {
		free(mapped);
		return -ENOMEM;
	}
	job->env = grown;
	grown[job->n_env].name = strndup(name, name_len);
	grown[job->n_env].value = mapped ? mapped : strdup(value);
	job->n_env++;
	return grown[job->n_env - 1].name && grown[job->n_env - 1].value ? 0 : -ENOMEM;
}

int invocation_map_roots(struct path_map *map, const char *cwd, const char *out_dir, char *const *envp,
			 const char *registry, const char *sysroot)
{
	const char *out_dir_env = env_get(envp, "OUT_DIR");
	const char *cargo_home = env_get(envp, "CARGO_HOME");
	const char *home = env_get(envp, "HOME");
	char *target = NULL, *tmp = NULL;
	int ret;

	ret = path_normalise(out_dir, cwd, &tmp);
	if (ret < 0)
		return ret;
	target = find_target_dir(tmp);
	free(tmp);
	tmp = NULL;
	if (sysroot)
		ret = path_map_add(map, sysroot, ROOT_SYSROOT);
	if (ret == 0 && target)
		ret = path_map_add(map, target, ROOT_TARGET);
	if (ret == 0)
		ret = path_map_add(map, registry, ROOT_REGISTRY);
	if (ret == 0 && cargo_home && cargo_home[0] == '/')
		ret = path_map_add(map, cargo_home, ROOT_CARGO_HOME);
	else if (ret == 0 && home && home[0] == '/') {
		if (asprintf(&tmp, "%s/.cargo", home) < 0)
			ret = -ENOMEM;
		else
			ret = path_map_add(map, tmp, ROOT_CARGO_HOME);
		free(tmp);
		tmp = NULL;
	}
	if (ret == 0 && out_dir_env && out_dir_env[0] == '/') {
		ret = path_normalise(out_dir_env, NULL, &tmp);
		if (ret == 0) {
			char *mapped = NULL;
			if (path_map_to_canonical(map, tmp, &mapped) == -ENOENT)
				ret = path_map_add(map, tmp, ROOT_OUT_DIR);
			free(mapped);
		}
		free(tmp);
	}
	/* The working directory is a root of its own unless it lies under one already (a crate in
	 * the registry); added last so every more specific root wins. */
	if (ret == 0) {
		char *mapped = NULL;
		int r = path_map_to_canonical(map, cwd, &mapped);
		free(mapped);
		if (r == -ENOENT || (r == 0 && strcmp(cwd, "/") == 0))
			ret = path_map_add(map, cwd, ROOT_CWD);
	}
	free(target);
	return ret;
}

static int setup_roots(struct invocation *inv, char *const *envp, const char *registry)
{
	return invocation_map_roots(&inv->map, inv->cwd, inv->args.dep_dir ? inv->args.dep_dir : inv->out_dir, envp,
				    registry, inv->toolchain.sysroot);
}

static int build_rewrite_map(struct invocation *inv)
{
	int ret = path_map_add(&inv->rewrite, inv->out_dir, ROOT_OUT);
	for (size_t i = 0; ret == 0 && i < inv->map.n; i++)
		ret = path_map_add(&inv->rewrite, inv->map.roots[i].local, inv->map.roots[i].canonical);
	return ret;
}

/* The environment every job carries: the CARGO_* variables env!() reads, and OUT_DIR. */
static int add_base_env(struct invocation *inv, char *const *envp)
{
	int ret = 0;
	for (char *const *e = envp; ret == 0 && e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : 0;
		char name[256];
		if (!eq || n >= sizeof(name))
			continue;
		memcpy(name, *e, n);
		name[n] = '\0';
		if (strcmp(name, "OUT_DIR") == 0 || env_cargo_kept(name))
			ret = add_env(inv, *e, n, eq + 1);
	}
	return ret;
}

/* Sort the inputs by canonical path, keeping each local path beside its input. */
static void sort_inputs(struct invocation *inv)
{
	struct job *job = &inv->job;
	for (size_t i = 1; i < job->n_inputs; i++) {
		struct job_input in = job->inputs[i];
		char *local = inv->input_local[i];
		size_t j = i;
		while (j > 0 && strcmp(job->inputs[j - 1].path, in.path) > 0) {
			job->inputs[j] = job->inputs[j - 1];
			inv->input_local[j] = inv->input_local[j - 1];
			j--;
		}
		job->inputs[j] = in;
		inv->input_local[j] = local;
	}
}

static int direct_path(const struct invocation_options *options, const unsigned char prekey[DIGEST_SIZE],
		       char *path, size_t len)
{
	char hex[DIGEST_HEX_SIZE];
	digest_to_hex(prekey, hex);
	return snprintf(path, len, "%s/%s.json", options->direct_dir, hex) < (int)len ? 0 : -ENAMETOOLONG;
}

/* A recorded list of JOB_INPUTS_MAX paths is well under this. */
#define DIRECT_LIST_MAX (64u << 20)

/* The local list recorded under PREKEY (never read through a symlink): a new reference, NULL
 * when there is none of the expected shape (hash/prekey.h). */
static json_t *direct_local_list(const struct invocation_options *options, const unsigned char prekey[DIGEST_SIZE])
{
	char path[PATH_MAX], *text = NULL;
	json_t *list = NULL;
	size_t len;

	if (direct_path(options, prekey, path, sizeof(path)) < 0)
		return NULL;
	if (io_read_file_at(AT_FDCWD, path, O_NOFOLLOW | O_NONBLOCK, DIRECT_LIST_MAX, &text, &len) == 0)
		list = json_loadb(text, len, 0, NULL);
	free(text);
	if (!prekey_list_valid(list)) {
		json_decref(list);
		return NULL;
	}
	return list;
}

static int job_has_env(const struct job *job, const char *name)
{
	for (size_t i = 0; i < job->n_env; i++)
		if (strcmp(job->env[i].name, name) == 0)
			return 1;
	return 0;
}

/* Whether LIST's variables still describe what rustc would read: none it read unset is set now
 * (option_env! would change what it reads, and the full pass will hash the new value), and the
 * current values of those it read fit in the job beside the base environment (the limits
 * add_env enforces, counted the way it counts). */
static int direct_list_env_applies(const struct invocation *inv, const json_t *list)
{
	const json_t *env_deps = json_object_get(list, "env_deps");
	size_t i, n_env = inv->job.n_env;
	json_t *v;

	json_array_foreach(json_object_get(list, "env_unset"), i, v) {
		const char *name = json_string_value(v);
		if (!name || env_get(inv->envp, name))
			return 0;
	}
	json_array_foreach(env_deps, i, v) {
		const char *name = json_string_value(v);
		const char *value = name ? env_get(inv->envp, name) : NULL;
		int seen = 0;
		/* A list may name only what a full pass could have put in a job. */
		if (name && env_is_credential(name, strlen(name)))
			return 0;
		if (!value || job_has_env(&inv->job, name))
			continue;
		for (size_t j = 0; j < i && !seen; j++) {
			const char *earlier = json_string_value(json_array_get(env_deps, j));
			seen = earlier && strcmp(earlier, name) == 0;
		}
		if (seen)
			continue;
		if (n_env >= JOB_ENV_MAX || strlen(value) > JOB_ENV_LEN_MAX)
			return 0;
		n_env++;
	}
	return 1;
}

/* Hash LIST's inputs as they are now into SET. Returns 0, 1 when one of them is not usable (the
 * list does not apply), or -ENOMEM. */
static int direct_list_hash_inputs(const struct invocation *inv, const json_t *list, struct input_set *set)
{
	struct input_refusal why;
	size_t i;
	json_t *v;

	json_array_foreach(json_object_get(list, "inputs"), i, v) {
		const char *canonical = json_string_value(v);
		char *local = NULL;
		int ret;
		if (!canonical || path_map_to_local(&inv->map, canonical, &local) < 0) {
			free(local);
			return 1;
		}
		ret = input_set_add(set, &inv->map, local, &why);
		free(local);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* Complete the job from LIST, hashing its files as they are now. The list is checked, and its
 * inputs hashed, apart from INV; only a list that applies in full is adopted. Returns 0 when
 * adopted, 1 when LIST does not apply (INV is as it was), -ENOMEM. */
static int direct_adopt(struct invocation *inv, const json_t *list)
{
	struct input_set set = { 0 };
	size_t i;
	json_t *v;
	int ret;

	ret = direct_list_env_applies(inv, list) ? direct_list_hash_inputs(inv, list, &set) : 1;
	if (ret != 0) {
		input_set_release(&set);
		return ret;
	}
	input_set_adopt(inv, &set);
	json_array_foreach(json_object_get(list, "env_deps"), i, v) {
		const char *name = json_string_value(v);
		const char *value = name ? env_get(inv->envp, name) : NULL;
		if (value && (ret = add_env(inv, name, strlen(name), value)) < 0)
			return ret;
	}
	return 0;
}

/* Direct mode: the lists that may complete INV's job without the dep-info pass are numbered
 * 0, the local one, then 1... the published ones (options->published_lists) in their order,
 * newest first. From options->direct_from on, the first that applies is adopted (INV->direct
 * set, INV->direct_next the number after it); the published ones are asked for only when the
 * numbers reach them. Otherwise INV is as it was and the caller runs the full pass. Returns 0
 * either way, or -ENOMEM. */
static int direct_load(struct invocation *inv, const struct invocation_options *options)
{
	json_t *published = NULL;
	int ret = 0, asked = 0;

	for (unsigned number = options->direct_from; ret == 0 && !inv->direct; number++) {
		json_t *list;
		if (number == 0) {
			list = direct_local_list(options, inv->prekey);
		} else {
			if (!asked && options->published_lists) {
				char hex[DIGEST_HEX_SIZE];
				digest_to_hex(inv->prekey, hex);
				if (options->published_lists(options->published_ctx, hex, &published) < 0
				    || !json_is_array(published)) {
					json_decref(published);
					published = NULL;
				}
			}
			asked = 1;
			if (number - 1 >= json_array_size(published))
				break;
			list = json_incref(json_array_get(published, number - 1));
			if (!prekey_list_valid(list)) {
				json_decref(list);
				continue;
			}
		}
		if (list && (ret = direct_adopt(inv, list)) == 0) {
			inv->direct = 1;
			inv->direct_published = number > 0;
			inv->direct_next = number + 1;
			inv->direct_list = list;
			list = NULL;
		}
		if (ret == 1)
			ret = 0;
		json_decref(list);
	}
	json_decref(published);
	return ret;
}

/* Write LIST as the local list of PREKEY (best effort: a list not recorded costs the next
 * build a full pass, nothing else). */
static void direct_write(const struct invocation_options *options, const unsigned char prekey[DIGEST_SIZE],
			 const json_t *list)
{
	char path[PATH_MAX], *text = NULL;

	if (!list || direct_path(options, prekey, path, sizeof(path)) < 0
	    || path_mkdir_parents(options->direct_dir, 0700) < 0)
		return;
	text = json_dumps(list, JSON_COMPACT);
	if (text)
		(void)!io_replace_file(path, text, strlen(text), 0600);
	free(text);
}

/* Record the list of a full pass under INV's pre-key: the job's inputs and env-deps, and the
 * variables the dep-info D says rustc read unset. */
static void direct_store(struct invocation *inv, const struct invocation_options *options, const struct depinfo *d)
{
	char **unset = calloc(d->n_env ? d->n_env : 1, sizeof(*unset));
	size_t n_unset = 0;
	json_t *list;

	if (!unset)
		return;
	for (size_t i = 0; i < d->n_env; i++)
		if (!d->env[i].value)
			unset[n_unset++] = d->env[i].name;
	list = prekey_list_make(&inv->job, unset, n_unset);
	direct_write(options, inv->prekey, list);
	json_decref(list);
	free(unset);
}

void invocation_direct_keep(const struct invocation *inv, const struct invocation_options *options)
{
	if (inv->direct && inv->direct_published && options->direct_dir)
		direct_write(options, inv->prekey, inv->direct_list);
}

/* --- units that link ------------------------------------------------------------------------ */

/* The libraries rustc's std links, which the link part holds. */
static int std_native_lib(const char *name)
{
	static const char *const names[] = { "c", "m", "dl", "pthread", "rt", "util", "gcc_s", "gcc", "gcc_eh" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* The `cc` rustc runs as its linker: the first one along its PATH, which is the host's bin
 * directories of the sysroot (none holds a cc in a rustup or Debian toolchain; one that does
 * is refused) and then the caller's PATH. *OUT is malloc'd. */
static int find_linker(struct invocation *inv, char **out)
{
	const char *path = env_get(inv->envp, "PATH");
	char buf[PATH_MAX], *copy, *dir, *save = NULL;
	DIR *d;
	struct dirent *e;
	int ret = -ENOENT;

	*out = NULL;
	snprintf(buf, sizeof(buf), "%s/lib/rustlib", inv->toolchain.sysroot);
	d = opendir(buf);
	while (d && (e = readdir(d))) {
		char cc[PATH_MAX];
		if (e->d_name[0] == '.')
			continue;
		if ((snprintf(cc, sizeof(cc), "%s/%s/bin/cc", buf, e->d_name) < (int)sizeof(cc) && access(cc, X_OK) == 0)
		    || (snprintf(cc, sizeof(cc), "%s/%s/bin/self-contained/cc", buf, e->d_name) < (int)sizeof(cc)
			&& access(cc, X_OK) == 0)) {
			closedir(d);
			not_cacheable(inv, RUSTC_NC_LINK, "the sysroot has its own cc (%.200s)", cc);
			return 0;
		}
	}
	if (d)
		closedir(d);
	copy = strdup(path ? path : "");
	if (!copy)
		return -ENOMEM;
	for (dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		struct stat st;
		if (dir[0] != '/' || snprintf(buf, sizeof(buf), "%s/cc", dir) >= (int)sizeof(buf))
			continue;
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0) {
			*out = strdup(buf);
			ret = *out ? 0 : -ENOMEM;
			break;
		}
	}
	free(copy);
	if (ret == -ENOENT) {
		not_cacheable(inv, RUSTC_NC_LINK, "no cc along PATH");
		ret = 0;
	}
	return ret;
}

/* The link part and the fixed PATH of a unit that links, before the pre-key is taken. */
static int setup_link(struct invocation *inv, const struct invocation_options *options)
{
	static const char *const refused_env[] = { "LIBRARY_PATH", "COMPILER_PATH", "GCC_EXEC_PREFIX" };
	int ret;

	for (size_t i = 0; i < sizeof(refused_env) / sizeof(refused_env[0]); i++)
		if (env_get(inv->envp, refused_env[i])) {
			not_cacheable(inv, RUSTC_NC_LINK, "%s is set", refused_env[i]);
			return 0;
		}
	ret = find_linker(inv, &inv->linker);
	if (ret < 0 || inv->reason != RUSTC_CACHEABLE)
		return ret;
	ret = toolchain_link_get(&inv->toolchain, inv->linker, options->cache_dir, &inv->link);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0) {
		not_cacheable(inv, RUSTC_NC_LINK, "the linker %.200s cannot be collected: %s", inv->linker,
			      strerror(-ret));
		return 0;
	}
	memcpy(inv->job.link_toolchain, inv->link.id, DIGEST_HEX_SIZE);
	return add_env(inv, "PATH", 4, ROOT_LINK_PATH);
}

/* The files a link reads beyond what the dep-info pass lists: the .rlib beside each .rmeta
 * (the pass needs only metadata; the link needs the code), and each -l library found in a -L
 * native= directory. A library found nowhere under the mapped roots refuses the unit, unless
 * it is one of std's, which the link part holds. */
static int add_link_inputs(struct invocation *inv, struct input_set *set)
{
	size_t n = set->n;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < n && inv->reason == RUSTC_CACHEABLE; i++) {
		const char *local = set->local[i];
		size_t len = strlen(local);
		char rlib[PATH_MAX];
		if (len < 6 || strcmp(local + len - 6, ".rmeta") != 0 || len + 1 >= sizeof(rlib))
			continue;
		memcpy(rlib, local, len - 6);
		memcpy(rlib + len - 6, ".rlib", 6);
		if (access(rlib, R_OK) == 0)
			ret = add_local_input(inv, set, rlib);
	}
	for (size_t i = 0; ret == 0 && i < inv->args.n_native_libs && inv->reason == RUSTC_CACHEABLE; i++) {
		const struct rustc_native_lib *lib = &inv->args.native_libs[i];
		char *found = NULL;
		for (size_t k = 0; !found && k < inv->args.n_native_dirs; k++) {
			/* +verbatim names the file; otherwise lib<name>.so, then lib<name>.a */
			static const char *const suffixes[] = { ".so", ".a", "" };
			for (size_t f = lib->verbatim ? 2 : 0; !found && f < (lib->verbatim ? 3u : 2u); f++) {
				char *abs = NULL;
				struct stat st;
				if (asprintf(&abs, "%s/%s%s%s", inv->args.native_dirs[k], lib->verbatim ? "" : "lib",
					     lib->name, suffixes[f]) < 0)
					return -ENOMEM;
				if (stat(abs, &st) == 0 && S_ISREG(st.st_mode))
					found = abs;
				else
					free(abs);
			}
		}
		if (found) {
			char *norm = NULL, *mapped = NULL;
			ret = path_normalise(found, inv->cwd, &norm);
			if (ret == 0 && path_map_to_canonical(&inv->map, norm, &mapped) == -ENOENT)
				not_cacheable(inv, RUSTC_NC_LINK, "native library -l %.100s: %.200s is outside the mapped roots",
					      lib->name, norm);
			else if (ret == 0)
				ret = add_local_input(inv, set, norm);
			free(mapped);
			free(norm);
			free(found);
		} else if (!std_native_lib(lib->name)) {
			not_cacheable(inv, RUSTC_NC_LINK, "native library -l %.100s is not under a mapped root", lib->name);
		}
	}
	return ret;
}

int invocation_build(struct invocation *inv, const char *rustc, int argc, char *const *argv,
		     const struct invocation_options *options)
{
	char cwd[PATH_MAX];
	struct depinfo d = { 0 };
	struct input_set inputs = { 0 };
	uint64_t t0, t1;
	int ret;

	memset(inv, 0, sizeof(*inv));
	inv->envp = options->envp;
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	ret = path_normalise(cwd, NULL, &inv->cwd);
	if (ret < 0)
		return ret;
	ret = rustc_args_parse(&inv->args, argc, argv);
	if (ret < 0)
		return ret;
	if (inv->args.reason != RUSTC_CACHEABLE) {
		inv->reason = inv->args.reason;
		snprintf(inv->reason_detail, sizeof(inv->reason_detail), "%s", inv->args.reason_detail);
		return 0;
	}
	ret = path_normalise(inv->args.out_dir, inv->cwd, &inv->out_dir);
	if (ret < 0)
		return ret;

	t0 = monotonic_us();
	ret = rustc_resolve(rustc, &inv->rustc);
	if (ret < 0) {
		not_cacheable(inv, RUSTC_NC_UNSUPPORTED, "cannot find the real rustc: %s", strerror(-ret));
		return 0;
	}
	ret = toolchain_get(inv->rustc, options->cache_dir, &inv->toolchain);
	if (ret < 0) {
		not_cacheable(inv, RUSTC_NC_UNSUPPORTED, "toolchain: %s", strerror(-ret));
		return 0;
	}
	memcpy(inv->job.toolchain, inv->toolchain.id, DIGEST_HEX_SIZE);
	t1 = monotonic_us();
	inv->us_toolchain = t1 - t0;

	ret = setup_roots(inv, options->envp, options->registry ? options->registry : DEBIAN_REGISTRY);
	if (ret == 0)
		ret = build_rewrite_map(inv);
	if (ret == 0)
		ret = path_map_to_canonical(&inv->map, inv->cwd, &inv->job.cwd);
	if (ret == 0)
		ret = build_argv(inv);
	if (ret < 0 || inv->reason != RUSTC_CACHEABLE)
		return ret;

	ret = add_base_env(inv, options->envp);
	if (ret == 0 && (inv->args.crate_types & RUSTC_CRATE_LINKS))
		ret = setup_link(inv, options);
	if (ret < 0 || inv->reason != RUSTC_CACHEABLE)
		return ret;
	if (job_normalise(&inv->job) < 0) {
		not_cacheable(inv, RUSTC_NC_MALFORMED, "duplicate variable");
		return 0;
	}
	if (options->direct_dir) {
		ret = job_prekey(&inv->job, inv->prekey);
		if (ret < 0)
			return ret;
	}
	if (options->direct_dir && options->use_direct) {
		t0 = monotonic_us();
		ret = direct_load(inv, options);
		inv->us_hash += monotonic_us() - t0;
		if (ret < 0)
			return ret;
		if (inv->direct)
			goto finish;
	}

	t0 = monotonic_us();
	ret = run_dep_info(inv, options->envp, &d);
	t1 = monotonic_us();
	inv->us_dep_info = t1 - t0;
	if (ret < 0 || inv->reason != RUSTC_CACHEABLE)
		goto out;

	t0 = monotonic_us();
	for (size_t i = 0; ret == 0 && i < d.n_files && inv->reason == RUSTC_CACHEABLE; i++)
		ret = add_local_input(inv, &inputs, d.files[i]);
	/* Externs are read even when the dep-info does not name them (proc-macro dylibs). */
	for (size_t i = 0; ret == 0 && i < inv->args.n_externs; i++)
		if (inv->args.externs[i].path)
			ret = add_local_input(inv, &inputs, inv->args.externs[i].path);
	if (ret == 0 && inv->args.target && strlen(inv->args.target) > 5
	    && strcmp(inv->args.target + strlen(inv->args.target) - 5, ".json") == 0)
		ret = add_local_input(inv, &inputs, inv->args.target);
	if (ret == 0 && (inv->args.crate_types & RUSTC_CRATE_LINKS))
		ret = add_link_inputs(inv, &inputs);
	input_set_adopt(inv, &inputs);
	for (size_t i = 0; ret == 0 && i < d.n_env; i++)
		if (d.env[i].value)
			ret = add_env(inv, d.env[i].name, strlen(d.env[i].name), d.env[i].value);
	inv->us_hash += monotonic_us() - t0;
	if (ret < 0 || inv->reason != RUSTC_CACHEABLE)
		goto out;
finish:
	sort_inputs(inv);
	if (job_normalise(&inv->job) < 0) {
		not_cacheable(inv, RUSTC_NC_MALFORMED, "duplicate input or variable");
		goto out;
	}
	t0 = monotonic_us();
	ret = job_key(&inv->job, inv->key, NULL);
	inv->us_hash += monotonic_us() - t0;
	if (ret == 0 && options->direct_dir && !inv->direct)
		direct_store(inv, options, &d);
out:
	depinfo_release(&d);
	return ret;
}
