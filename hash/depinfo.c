/* The dep-info parser; see depinfo.h. */
#include "config.h"

#include "hash/depinfo.h"

#include <errno.h>
#include <stdint.h>
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

/* The files seen so far, for listing each once. rustc writes one rule per output, each repeating
 * the whole list, so every name is looked up once per output: a linear scan made that quadratic
 * (a 220 KB dep-info of 20000 files took over 10 s under the fuzzer, 65536 files 4 minutes).
 * Hence an open-addressing set of indices into d->files (index + 1; 0 is an empty slot), kept at
 * most half full, and d->files grown geometrically. */
struct file_set {
	struct depinfo *d;
	size_t files_cap;   /* allocated length of d->files */
	size_t *slots;
	size_t n_slots;     /* a power of two, or 0 before the first file */
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	return h;
}

/* Put index I of d->files into SLOTS (N_SLOTS a power of two, not full). */
static void set_insert(size_t *slots, size_t n_slots, const char *name, size_t i)
{
	size_t at = (size_t)name_hash(name) & (n_slots - 1);
	while (slots[at])
		at = (at + 1) & (n_slots - 1);
	slots[at] = i + 1;
}

static int set_grow(struct file_set *set)
{
	size_t n = set->n_slots ? 2 * set->n_slots : 64;
	size_t *slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < set->d->n_files; i++)
		set_insert(slots, n, set->d->files[i], i);
	free(set->slots);
	set->slots = slots;
	set->n_slots = n;
	return 0;
}

static int add_file(struct file_set *set, char *name)
{
	struct depinfo *d = set->d;
	int ret = -ENOMEM;

	if (set->n_slots) {
		size_t at = (size_t)name_hash(name) & (set->n_slots - 1);
		for (; set->slots[at]; at = (at + 1) & (set->n_slots - 1))
			if (strcmp(d->files[set->slots[at] - 1], name) == 0) {
				free(name);
				return 0;
			}
	}
	if (d->n_files >= DEPINFO_FILES_MAX) {
		ret = -E2BIG;
		goto fail;
	}
	if (d->n_files == set->files_cap) {
		size_t cap = set->files_cap ? 2 * set->files_cap : 16;
		char **grown = realloc(d->files, cap * sizeof(*grown));
		if (!grown)
			goto fail;
		d->files = grown;
		set->files_cap = cap;
	}
	/* Keep the set at most half full, so probes stay short and an empty slot always exists. */
	if (2 * (d->n_files + 1) > set->n_slots && set_grow(set) < 0)
		goto fail;
	d->files[d->n_files] = name;
	set_insert(set->slots, set->n_slots, name, d->n_files);
	d->n_files++;
	return 0;
fail:
	free(name);
	return ret;
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

/* How many bytes of S (LEN bytes) the escape at I takes: 2 for "\\ ", "\\#", "\\\\" and "$$",
 * which stand for one byte of the name; 1 otherwise. */
static size_t escape_len(const char *s, size_t i, size_t len)
{
	if (i + 1 < len && s[i] == '\\' && (s[i + 1] == ' ' || s[i + 1] == '#' || s[i + 1] == '\\'))
		return 2;
	if (i + 1 < len && s[i] == '$' && s[i + 1] == '$')
		return 2;
	return 1;
}

/* Parse the prerequisites of one rule line (after the target's ':'). */
static int parse_prerequisites(struct file_set *set, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end, n = 0;
		char *name;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i >= len)
			break;
		/* Measure the name and allocate just that: an allocation of the rest of the line per
		 * name would make one long rule cost memory in the square of its length. */
		for (end = i; end < len && s[end] != ' ' && s[end] != '\t'; end += escape_len(s, end, len))
			n++;
		name = malloc(n + 1);
		if (!name)
			return -ENOMEM;
		for (n = 0; i < end; i += escape_len(s, i, len))
			name[n++] = escape_len(s, i, len) == 2 ? s[i + 1] : s[i];
		name[n] = '\0';
		if (memchr(name, '\0', n)) {
			free(name);
			return -EINVAL;
		}
		int ret = add_file(set, name);
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
	struct file_set set = { .d = d };
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
		ret = parse_prerequisites(&set, colon + 1, n - (size_t)(colon + 1 - line));
	}
	free(set.slots);
	if (ret < 0)
		depinfo_release(d);
	return ret;
}
