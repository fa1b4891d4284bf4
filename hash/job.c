/* The job, its wire JSON and its v1 key; see job.h for the encoding. */
#include "config.h"

#include "hash/job.h"

#include "base/error.h"
#include "base/field_hasher.h"
#include "base/path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash/args.h"

void job_release(struct job *job)
{
	for (size_t i = 0; i < job->argc; i++)
		free(job->argv[i]);
	free(job->argv);
	for (size_t i = 0; i < job->n_env; i++) {
		free(job->env[i].name);
		free(job->env[i].value);
	}
	free(job->env);
	free(job->cwd);
	for (size_t i = 0; i < job->n_inputs; i++)
		free(job->inputs[i].path);
	free(job->inputs);
	memset(job, 0, sizeof(*job));
}

static int env_cmp(const void *a, const void *b)
{
	return strcmp(((const struct job_env *)a)->name, ((const struct job_env *)b)->name);
}

static int input_cmp(const void *a, const void *b)
{
	return strcmp(((const struct job_input *)a)->path, ((const struct job_input *)b)->path);
}

int job_normalise(struct job *job)
{
	if (job->n_env > 1)
		qsort(job->env, job->n_env, sizeof(*job->env), env_cmp);
	if (job->n_inputs > 1)
		qsort(job->inputs, job->n_inputs, sizeof(*job->inputs), input_cmp);
	for (size_t i = 1; i < job->n_env; i++)
		if (strcmp(job->env[i - 1].name, job->env[i].name) == 0)
			return -EINVAL;
	for (size_t i = 1; i < job->n_inputs; i++)
		if (strcmp(job->inputs[i - 1].path, job->inputs[i].path) == 0)
			return -EINVAL;
	return 0;
}

/* The hashing state: the typed-field hasher, and an optional dump of every field for
 * --explain. */
struct key_hasher {
	struct field_hasher fields;
	FILE *dump;
};

static void hash_string(struct key_hasher *h, char tag, const char *s)
{
	field_hasher_add(&h->fields, tag, s, strlen(s));
	if (h->dump)
		fprintf(h->dump, "%c %s\n", tag, s);
}

static void hash_count(struct key_hasher *h, char tag, uint64_t n)
{
	field_hasher_add_u64(&h->fields, tag, n);
	if (h->dump)
		fprintf(h->dump, "%c %llu\n", tag, (unsigned long long)n);
}

_Static_assert(FIELD_HASHER_SIZE == DIGEST_SIZE, "a key is a SHA-256 digest");

int job_key(const struct job *job, unsigned char key[DIGEST_SIZE], FILE *dump)
{
	struct key_hasher h = { .dump = dump };
	int ret;

	/* The tag includes its NUL, so "v1" can never be read as a prefix of "v10". */
	ret = field_hasher_init(&h.fields, JOB_KEY_TAG, sizeof(JOB_KEY_TAG));
	if (ret < 0)
		goto out;
	if (dump)
		fprintf(dump, "# %s\n", JOB_KEY_TAG);
	if (job->kind == JOB_KIND_C)
		hash_string(&h, 'K', "c");
	hash_string(&h, 'T', job->toolchain);
	if (job->link_toolchain[0])
		hash_string(&h, 'L', job->link_toolchain);
	hash_count(&h, 'n', job->argc);
	for (size_t i = 0; i < job->argc; i++)
		hash_string(&h, 'a', job->argv[i]);
	hash_count(&h, 'N', job->n_env);
	for (size_t i = 0; i < job->n_env; i++) {
		hash_string(&h, 'e', job->env[i].name);
		hash_string(&h, 'v', job->env[i].value);
	}
	hash_string(&h, 'C', job->cwd ? job->cwd : "");
	hash_count(&h, 'I', job->n_inputs);
	for (size_t i = 0; i < job->n_inputs; i++) {
		const struct job_input *in = &job->inputs[i];
		unsigned char mode[4] = { (unsigned char)in->mode, (unsigned char)(in->mode >> 8),
			(unsigned char)(in->mode >> 16), (unsigned char)(in->mode >> 24) };
		hash_string(&h, 'p', in->path);
		field_hasher_add(&h.fields, 'm', mode, sizeof(mode));
		field_hasher_add(&h.fields, 'h', in->sha256, DIGEST_SIZE);
		if (dump) {
			char hex[DIGEST_HEX_SIZE];
			digest_to_hex(in->sha256, hex);
			fprintf(dump, "m %04o\nh %s\n", in->mode, hex);
		}
	}
	ret = field_hasher_finish(&h.fields, key);
out:
	field_hasher_release(&h.fields);
	return ret;
}

json_t *job_to_json(const struct job *job)
{
	json_t *root = json_object();
	json_t *argv = json_array();
	json_t *env = json_array();
	json_t *inputs = json_array();
	int bad = !root || !argv || !env || !inputs;

	for (size_t i = 0; !bad && i < job->argc; i++)
		bad |= json_array_append_new(argv, json_string(job->argv[i])) != 0;
	for (size_t i = 0; !bad && i < job->n_env; i++)
		bad |= json_array_append_new(env, json_pack("[ss]", job->env[i].name,
								job->env[i].value)) != 0;
	for (size_t i = 0; !bad && i < job->n_inputs; i++) {
		char hex[DIGEST_HEX_SIZE];
		digest_to_hex(job->inputs[i].sha256, hex);
		bad |= json_array_append_new(inputs, json_pack("{s:s,s:i,s:s}", "path",
				job->inputs[i].path, "mode", (json_int_t)job->inputs[i].mode,
				"sha256", hex)) != 0;
	}
	if (!bad)
		bad = json_object_set_new(root, "version", json_integer(1))
		      || (job->kind == JOB_KIND_C && json_object_set_new(root, "kind", json_string("c")))
		      || json_object_set_new(root, "toolchain", json_string(job->toolchain))
		      || (job->link_toolchain[0]
			  && json_object_set_new(root, "link_toolchain", json_string(job->link_toolchain)))
		      || json_object_set(root, "argv", argv)
		      || json_object_set(root, "env", env)
		      || json_object_set_new(root, "cwd", json_string(job->cwd ? job->cwd : ""))
		      || json_object_set(root, "inputs", inputs);
	json_decref(argv);
	json_decref(env);
	json_decref(inputs);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int job_path_valid(const char *path)
{
	static const char root[] = ROOT_INPUTS "/";
	static const char out[] = ROOT_OUT;
	size_t len = strlen(path);

	if (len >= JOB_PATH_MAX || strncmp(path, root, sizeof(root) - 1) != 0)
		return 0;
	if (strncmp(path, out, sizeof(out) - 1) == 0
	    && (path[sizeof(out) - 1] == '\0' || path[sizeof(out) - 1] == '/'))
		return 0;
	/* Every component after the leading '/' is one base/path accepts. */
	return path_relative_valid(path + 1);
}

/* A JSON string as a C string: rejects embedded NULs and lengths past MAX. */
static const char *json_cstring(const json_t *v, size_t max)
{
	const char *s;
	if (!json_is_string(v))
		return NULL;
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s) || json_string_length(v) > max)
		return NULL;
	return s;
}

static int parse_argv(const json_t *argv, struct job *job, char *err, size_t errlen)
{
	size_t n = json_array_size(argv);
	if (!json_is_array(argv) || n == 0 || n > JOB_ARGS_MAX)
		return error_format(err, errlen, -EINVAL,
				    "argv: an array of 1 to %d strings expected", JOB_ARGS_MAX);
	job->argv = calloc(n, sizeof(*job->argv));
	if (!job->argv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_cstring(json_array_get(argv, i), JOB_ARG_LEN_MAX);
		if (!s)
			return error_format(err, errlen, -EINVAL,
					    "argv[%zu]: not a string of at most %d bytes", i,
					    JOB_ARG_LEN_MAX);
		if (i == 0 && job->kind == JOB_KIND_RUSTC && strcmp(s, ROOT_RUSTC) != 0)
			return error_format(err, errlen, -EINVAL, "argv[0] must be %s", ROOT_RUSTC);
		if (i == 0 && job->kind == JOB_KIND_C && strcmp(s, ROOT_C_DRIVER) != 0
		    && strcmp(s, ROOT_CXX_DRIVER) != 0)
			return error_format(err, errlen, -EINVAL, "argv[0] of a C job must be %s or %s",
					    ROOT_C_DRIVER, ROOT_CXX_DRIVER);
		if (s[0] == '@')
			return error_format(err, errlen, -EINVAL,
					    "argv[%zu]: @argfiles are not accepted", i);
		job->argv[i] = strdup(s);
		if (!job->argv[i])
			return -ENOMEM;
		job->argc++;
	}
	return 0;
}

static int parse_env(const json_t *env, struct job *job, char *err, size_t errlen)
{
	size_t n = json_array_size(env);
	if (!json_is_array(env) || n > JOB_ENV_MAX)
		return error_format(err, errlen, -EINVAL,
				    "env: an array of at most %d pairs expected", JOB_ENV_MAX);
	job->env = calloc(n ? n : 1, sizeof(*job->env));
	if (!job->env)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *pair = json_array_get(env, i);
		const char *name = json_cstring(json_array_get(pair, 0), 256);
		const char *value = json_cstring(json_array_get(pair, 1), JOB_ENV_LEN_MAX);
		if (!json_is_array(pair) || json_array_size(pair) != 2 || !name || !value || !name[0]
		    || strchr(name, '='))
			return error_format(err, errlen, -EINVAL,
					    "env[%zu]: a [name, value] pair expected", i);
		job->env[i].name = strdup(name);
		job->env[i].value = strdup(value);
		job->n_env++;
		if (!job->env[i].name || !job->env[i].value)
			return -ENOMEM;
	}
	return 0;
}

static int parse_inputs(const json_t *inputs, struct job *job, char *err, size_t errlen)
{
	size_t n = json_array_size(inputs);
	if (!json_is_array(inputs) || n > JOB_INPUTS_MAX)
		return error_format(err, errlen, -EINVAL,
				    "inputs: an array of at most %d objects expected",
				    JOB_INPUTS_MAX);
	job->inputs = calloc(n ? n : 1, sizeof(*job->inputs));
	if (!job->inputs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *in = json_array_get(inputs, i);
		const char *path = json_cstring(json_object_get(in, "path"), JOB_PATH_MAX);
		const json_t *mode = json_object_get(in, "mode");
		const char *hex = json_cstring(json_object_get(in, "sha256"), 64);
		json_int_t m;

		if (!json_is_object(in) || !path || !json_is_integer(mode) || !hex)
			return error_format(err, errlen, -EINVAL,
					    "inputs[%zu]: {path, mode, sha256} expected", i);
		if (!job_path_valid(path))
			return error_format(err, errlen, -EINVAL,
					    "inputs[%zu]: %.200s is not a canonical input path", i,
					    path);
		m = json_integer_value(mode);
		if (m != 0644 && m != 0755)
			return error_format(err, errlen, -EINVAL,
					    "inputs[%zu]: mode must be 420 or 493", i);
		if (!digest_hex_valid(hex) || digest_from_hex(hex, job->inputs[i].sha256) < 0)
			return error_format(err, errlen, -EINVAL,
					    "inputs[%zu]: sha256 must be 64 lowercase hex digits",
					    i);
		job->inputs[i].mode = (unsigned)m;
		job->inputs[i].path = strdup(path);
		job->n_inputs++;
		if (!job->inputs[i].path)
			return -ENOMEM;
	}
	return 0;
}

int job_from_json(const json_t *json, struct job *job, char *err, size_t errlen)
{
	const char *toolchain, *cwd;
	const json_t *version;
	int ret;

	memset(job, 0, sizeof(*job));
	if (!json_is_object(json)) {
		ret = error_format(err, errlen, -EINVAL, "a job must be a JSON object");
		goto fail;
	}
	version = json_object_get(json, "version");
	if (!json_is_integer(version) || json_integer_value(version) != 1) {
		ret = error_format(err, errlen, -EINVAL, "version: 1 expected");
		goto fail;
	}
	if (json_object_get(json, "kind")) {
		const char *kind = json_cstring(json_object_get(json, "kind"), 16);
		if (!kind || strcmp(kind, "c") != 0) {
			ret = error_format(err, errlen, -EINVAL, "kind: \"c\" or absent expected");
			goto fail;
		}
		job->kind = JOB_KIND_C;
	}
	toolchain = json_cstring(json_object_get(json, "toolchain"), 64);
	if (!toolchain || !digest_hex_valid(toolchain)) {
		ret = error_format(err, errlen, -EINVAL,
				   "toolchain: 64 lowercase hex digits expected");
		goto fail;
	}
	memcpy(job->toolchain, toolchain, DIGEST_HEX_SIZE);
	if (json_object_get(json, "link_toolchain") && job->kind == JOB_KIND_C) {
		ret = error_format(err, errlen, -EINVAL, "a C job has no link part");
		goto fail;
	}
	if (json_object_get(json, "link_toolchain")) {
		const char *link = json_cstring(json_object_get(json, "link_toolchain"), 64);
		if (!link || !digest_hex_valid(link)) {
			ret = error_format(err, errlen, -EINVAL,
					   "link_toolchain: 64 lowercase hex digits expected");
			goto fail;
		}
		memcpy(job->link_toolchain, link, DIGEST_HEX_SIZE);
	}
	cwd = json_cstring(json_object_get(json, "cwd"), JOB_PATH_MAX);
	if (!cwd || !job_path_valid(cwd)) {
		ret = error_format(err, errlen, -EINVAL, "cwd: a canonical path under %s/ expected",
				   ROOT_INPUTS);
		goto fail;
	}
	job->cwd = strdup(cwd);
	if (!job->cwd) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = parse_argv(json_object_get(json, "argv"), job, err, errlen);
	if (ret == 0)
		ret = parse_env(json_object_get(json, "env"), job, err, errlen);
	if (ret == 0)
		ret = parse_inputs(json_object_get(json, "inputs"), job, err, errlen);
	if (ret == 0 && job_normalise(job) < 0)
		ret = error_format(err, errlen, -EINVAL, "duplicate env name or input path");
	if (ret == 0)
		return 0;
fail:
	if (ret == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory");
	job_release(job);
	return ret;
}

void job_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The object of a C job: the one -o, which names a file directly in ROOT_OUT. */
static int c_expected_output(const struct job *job, char ***names, size_t *n)
{
	static const char out[] = ROOT_OUT "/";
	const char *object = NULL;
	size_t len;

	for (size_t i = 1; i < job->argc; i++) {
		if (strncmp(job->argv[i], "-o", 2) != 0)
			continue;
		if (object || job->argv[i][2] != '\0' || i + 1 >= job->argc)
			return -EINVAL;
		object = job->argv[++i];
	}
	if (!object || strncmp(object, out, sizeof(out) - 1) != 0)
		return -EINVAL;
	object += sizeof(out) - 1;
	len = strlen(object);
	if (!path_component_valid(object, len) || (len >= 2 && strcmp(object + len - 2, ".d") == 0))
		return -EINVAL;
	*names = calloc(1, sizeof(**names));
	if (!*names || !((*names)[0] = strdup(object))) {
		free(*names);
		*names = NULL;
		return -ENOMEM;
	}
	*n = 1;
	return 0;
}

int job_expected_outputs(const struct job *job, char ***names, size_t *n)
{
	struct rustc_args args;
	const char *extra = "";
	char **list = NULL;
	size_t count = 0;
	int ret;

	*names = NULL;
	*n = 0;
	if (job->argc < 1)
		return -EINVAL;
	if (job->kind == JOB_KIND_C)
		return c_expected_output(job, names, n);
	ret = rustc_args_parse(&args, (int)job->argc - 1, job->argv + 1);
	if (ret < 0)
		return ret;
	if (!args.crate_name) {
		ret = -EINVAL;
		goto out;
	}
	for (size_t i = 1; i < job->argc; i++) {
		const char *a = job->argv[i];
		const char *v = NULL;
		if (strncmp(a, "-Cextra-filename=", 17) == 0)
			v = a + 17;
		else if ((strcmp(a, "-C") == 0 || strcmp(a, "--codegen") == 0) && i + 1 < job->argc
			 && strncmp(job->argv[i + 1], "extra-filename=", 15) == 0)
			v = job->argv[i + 1] + 15;
		if (v)
			extra = v;
	}
	if (strchr(extra, '/') || strchr(args.crate_name, '/')) {
		ret = -EINVAL;
		goto out;
	}
	list = calloc(5, sizeof(*list));
	if (!list) {
		ret = -ENOMEM;
		goto out;
	}
	if (args.emit & RUSTC_EMIT_LINK) {
		if ((args.crate_types & RUSTC_CRATE_RLIB)
		    && asprintf(&list[count++], "lib%s%s.rlib", args.crate_name, extra) < 0)
			ret = -ENOMEM;
		if (ret == 0 && (args.crate_types & (RUSTC_CRATE_PROC_MACRO | RUSTC_CRATE_DYLIB | RUSTC_CRATE_CDYLIB))
		    && asprintf(&list[count++], "lib%s%s.so", args.crate_name, extra) < 0)
			ret = -ENOMEM;
		if (ret == 0 && (args.crate_types & RUSTC_CRATE_BIN)
		    && asprintf(&list[count++], "%s%s", args.crate_name, extra) < 0)
			ret = -ENOMEM;
	}
	if (ret == 0 && (args.emit & RUSTC_EMIT_METADATA)
	    && asprintf(&list[count++], "lib%s%s.rmeta", args.crate_name, extra) < 0)
		ret = -ENOMEM;
	if (ret == 0 && (args.emit & RUSTC_EMIT_DEP_INFO)
	    && asprintf(&list[count++], "%s%s.d", args.crate_name, extra) < 0)
		ret = -ENOMEM;
	if (ret < 0) {
		/* asprintf leaves its pointer undefined on failure */
		list[count - 1] = NULL;
		job_names_free(list, count);
		goto out;
	}
	*names = list;
	*n = count;
out:
	rustc_args_release(&args);
	return ret;
}
