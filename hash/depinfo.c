/* The dep-info parser; see depinfo.h. */
#include "config.h"

#include "hash/depinfo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void depinfo_release(struct depinfo *d)
{
	for (size_t i = 0; i < d->n_files; i++)
		free(d->files[i]);
	free(d->files);
	for (size_t i = 0; i < d->n_env; i++) {
		free(d->env[i].name);
		free(d->env[i].value);
	}
	free(d->env);
	memset(d, 0, sizeof(*d));
}

static int add_file(struct depinfo *d, char *name)
{
	char **grown;
	/* Each output's rule repeats the same list; keep the first of each. Linear is fine for the
	 * common case of one to three rules: later duplicates are found near the start. */
	for (size_t i = 0; i < d->n_files; i++)
		if (strcmp(d->files[i], name) == 0) {
			free(name);
			return 0;
		}
	if (d->n_files >= DEPINFO_FILES_MAX) {
		free(name);
		return -E2BIG;
	}
	grown = realloc(d->files, (d->n_files + 1) * sizeof(*grown));
	if (!grown) {
		free(name);
		return -ENOMEM;
	}
	d->files = grown;
	d->files[d->n_files++] = name;
	return 0;
}

/* Unescape an env-dep value: "\n", "\r", "\\". */
static char *unescape_value(const char *s, size_t len)
{
	char *out = malloc(len + 1), *w = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			char c = s[i + 1];
			if (c == 'n' || c == 'r' || c == '\\') {
				*w++ = c == 'n' ? '\n' : c == 'r' ? '\r' : '\\';
				i++;
				continue;
			}
		}
		*w++ = s[i];
	}
	*w = '\0';
	return out;
}

static int parse_env_dep(struct depinfo *d, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	size_t name_len = eq ? (size_t)(eq - s) : len;
	struct depinfo_env *grown, *e;

	if (name_len == 0 || memchr(s, '\0', name_len))
		return -EINVAL;
	if (d->n_env >= DEPINFO_ENV_MAX)
		return -E2BIG;
	grown = realloc(d->env, (d->n_env + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	d->env = grown;
	e = &d->env[d->n_env];
	e->name = strndup(s, name_len);
	e->value = eq ? unescape_value(eq + 1, len - name_len - 1) : NULL;
	if (!e->name || (eq && !e->value)) {
		free(e->name);
		free(e->value);
		return -ENOMEM;
	}
	d->n_env++;
	return 0;
}

/* Parse the prerequisites of one rule line (after the target's ':'). */
static int parse_prerequisites(struct depinfo *d, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		char *name, *w;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i >= len)
			break;
		name = malloc(len - i + 1);
		if (!name)
			return -ENOMEM;
		w = name;
		while (i < len && s[i] != ' ' && s[i] != '\t') {
			if (s[i] == '\\' && i + 1 < len && (s[i + 1] == ' ' || s[i + 1] == '#' || s[i + 1] == '\\')) {
				*w++ = s[i + 1];
				i += 2;
			} else if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
				*w++ = '$';
				i += 2;
			} else {
				*w++ = s[i++];
			}
		}
		*w = '\0';
		if (memchr(name, '\0', (size_t)(w - name))) {
			free(name);
			return -EINVAL;
		}
		int ret = add_file(d, name);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The ':' that ends a rule's target: the first one not escaped by a backslash. */
static const char *find_colon(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			i++;
			continue;
		}
		if (s[i] == ':' && (i + 1 == len || s[i + 1] == ' ' || s[i + 1] == '\t'))
			return s + i;
	}
	return NULL;
}

int depinfo_parse(const char *text, size_t len, struct depinfo *d)
{
	static const char env_dep[] = "# env-dep:";
	size_t pos = 0;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	if (len > DEPINFO_TEXT_MAX)
		return -E2BIG;
	while (pos < len && ret == 0) {
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		const char *colon;

		pos += n + (nl ? 1 : 0);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			continue;
		if (line[0] == '#') {
			if (n >= sizeof(env_dep) - 1 && memcmp(line, env_dep, sizeof(env_dep) - 1) == 0)
				ret = parse_env_dep(d, line + sizeof(env_dep) - 1, n - (sizeof(env_dep) - 1));
			continue;
		}
		colon = find_colon(line, n);
		if (!colon) {
			ret = -EINVAL;
			break;
		}
		ret = parse_prerequisites(d, colon + 1, n - (size_t)(colon + 1 - line));
	}
	if (ret < 0)
		depinfo_release(d);
	return ret;
}
