/* Direct mode's shared recipe; see prekey.h. */
#include "config.h"

#include "hash/prekey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


int env_is_credential(const char *name, size_t len)
{
	static const char *const prefixes[] = { "CARGO_REGISTRY_", "CARGO_REGISTRIES_", "CARGO_HTTP_" };
	static const char *const words[] = { "TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL",
		"PRIVATE_KEY", "API_KEY", "ACCESS_KEY" };

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (len >= strlen(prefixes[i]) && strncasecmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	if (len >= 6 && strncasecmp(name + len - 6, "_PROXY", 6) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		for (size_t at = 0, n = strlen(words[i]); at + n <= len; at++)
			if (strncasecmp(name + at, words[i], n) == 0)
				return 1;
	return 0;
}

int env_cargo_kept(const char *name)
{
	static const char *const dropped[] = { "CARGO_MAKEFLAGS", "CARGO_BUILD_JOBS",
		"CARGO_ENCODED_RUSTFLAGS" };
	if (strncmp(name, "CARGO_", 6) != 0 || env_is_credential(name, strlen(name)))
		return 0;
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (strcmp(name, dropped[i]) == 0)
			return 0;
	return 1;
}

int prekey_env_is_base(const struct job *job, const char *name)
{
	if (strcmp(name, "OUT_DIR") == 0 || env_cargo_kept(name))
		return 1;
	return job->link_toolchain[0] && strcmp(name, "PATH") == 0;
}

int job_prekey(const struct job *job, unsigned char prekey[DIGEST_SIZE])
{
	static const char tag[] = PREKEY_TAG;
	unsigned char partial[DIGEST_SIZE], buf[sizeof(tag) + DIGEST_SIZE];
	struct job base = *job;
	int ret;

	/* The same job without inputs and with the base environment only; the strings stay the
	 * caller's (BASE is never released). Filtering keeps the order, so BASE is normalised. */
	base.inputs = NULL;
	base.n_inputs = 0;
	base.env = calloc(job->n_env ? job->n_env : 1, sizeof(*base.env));
	if (!base.env)
		return -ENOMEM;
	base.n_env = 0;
	for (size_t i = 0; i < job->n_env; i++)
		if (prekey_env_is_base(job, job->env[i].name))
			base.env[base.n_env++] = job->env[i];
	ret = job_key(&base, partial, NULL);
	free(base.env);
	if (ret < 0)
		return ret;
	memcpy(buf, tag, sizeof(tag));
	memcpy(buf + sizeof(tag), partial, DIGEST_SIZE);
	return digest_buffer(buf, sizeof(buf), prekey);
}

json_t *prekey_list_make(const struct job *job, char *const *unset, size_t n_unset)
{
	json_t *inputs = json_array(), *env = json_array(), *none = json_array(), *list = NULL;
	int bad = !inputs || !env || !none;

	for (size_t i = 0; !bad && i < job->n_inputs; i++)
		bad = json_array_append_new(inputs, json_string(job->inputs[i].path)) < 0;
	for (size_t i = 0; !bad && i < job->n_env; i++)
		if (!prekey_env_is_base(job, job->env[i].name))
			bad = json_array_append_new(env, json_string(job->env[i].name)) < 0;
	for (size_t i = 0; !bad && i < n_unset; i++)
		bad = json_array_append_new(none, json_string(unset[i])) < 0;
	if (!bad)
		list = json_pack("{s:O, s:O, s:O}", "inputs", inputs, "env_deps", env, "env_unset", none);
	json_decref(inputs);
	json_decref(env);
	json_decref(none);
	return list;
}

static int names_valid(const json_t *names)
{
	size_t i;
	json_t *v;

	if (!json_is_array(names) || json_array_size(names) > JOB_ENV_MAX)
		return 0;
	json_array_foreach(names, i, v) {
		const char *s = json_string_value(v);
		if (!s || !s[0] || json_string_length(v) != strlen(s) || strlen(s) > JOB_ENV_LEN_MAX || strchr(s, '='))
			return 0;
	}
	return 1;
}

int prekey_list_valid(const json_t *list)
{
	const json_t *inputs = json_object_get(list, "inputs");
	size_t i;
	json_t *v;

	if (!json_is_object(list) || !json_is_array(inputs) || json_array_size(inputs) > JOB_INPUTS_MAX
	    || !names_valid(json_object_get(list, "env_deps")) || !names_valid(json_object_get(list, "env_unset")))
		return 0;
	json_array_foreach(inputs, i, v) {
		const char *s = json_string_value(v);
		if (!s || json_string_length(v) != strlen(s) || !job_path_valid(s))
			return 0;
	}
	return 1;
}
