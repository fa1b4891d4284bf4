/* Path mapping onto canonical roots; see pathmap.h. */
#include "config.h"

#include "hash/pathmap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void path_map_release(struct path_map *map)
{
	for (size_t i = 0; i < map->n; i++) {
		free(map->roots[i].local);
		free(map->roots[i].canonical);
	}
	free(map->roots);
	map->roots = NULL;
	map->n = 0;
}

int path_normalise(const char *path, const char *base, char **out)
{
	size_t plen = strlen(path), blen = base ? strlen(base) : 0;
	char *buf, *w;
	const char *p;

	*out = NULL;
	if (path[0] != '/' && (!base || base[0] != '/'))
		return -EINVAL;
	buf = malloc(plen + blen + 3);
	if (!buf)
		return -ENOMEM;
	w = buf;
	/* Walk the components of BASE then PATH, writing "/comp" for each kept one. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0 && path[0] == '/')
			continue;
		p = pass == 0 ? base : path;
		while (*p) {
			size_t n;
			while (*p == '/')
				p++;
			n = strcspn(p, "/");
			if (n == 0)
				break;
			if (n == 1 && p[0] == '.') {
				/* nothing */
			} else if (n == 2 && p[0] == '.' && p[1] == '.') {
				while (w > buf && *--w != '/')
					;
			} else {
				*w++ = '/';
				memcpy(w, p, n);
				w += n;
			}
			p += n;
		}
	}
	if (w == buf)
		*w++ = '/';
	*w = '\0';
	*out = buf;
	return 0;
}

/* Does PATH start with PREFIX at a component boundary? Returns the prefix length or 0. */
static size_t prefix_match(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);
	if (n == 1 && prefix[0] == '/')
		return 1;
	if (strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/'))
		return n;
	return 0;
}

int path_map_add(struct path_map *map, const char *local, const char *canonical)
{
	struct path_root *grown;
	char *norm = NULL;
	int ret;

	if (local[0] != '/' || canonical[0] != '/')
		return -EINVAL;
	ret = path_normalise(local, NULL, &norm);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->roots[i].local, norm) == 0) {
			free(norm);
			return 0;
		}
	grown = realloc(map->roots, (map->n + 1) * sizeof(*grown));
	if (!grown) {
		free(norm);
		return -ENOMEM;
	}
	map->roots = grown;
	grown[map->n].local = norm;
	grown[map->n].canonical = strdup(canonical);
	if (!grown[map->n].canonical) {
		free(norm);
		return -ENOMEM;
	}
	map->n++;
	return 0;
}

int path_map_to_canonical(const struct path_map *map, const char *local, char **out)
{
	const struct path_root *best = NULL;
	size_t best_len = 0;

	*out = NULL;
	for (size_t i = 0; i < map->n; i++) {
		size_t n = prefix_match(local, map->roots[i].local);
		if (n > best_len) {
			best = &map->roots[i];
			best_len = n;
		}
	}
	if (!best)
		return -ENOENT;
	if (best_len == 1) /* the root "/" itself */
		best_len = 0;
	if (asprintf(out, "%s%s", best->canonical, local + best_len) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int path_map_to_local(const struct path_map *map, const char *canonical, char **out)
{
	const struct path_root *best = NULL;
	size_t best_len = 0;

	*out = NULL;
	for (size_t i = 0; i < map->n; i++) {
		size_t n = prefix_match(canonical, map->roots[i].canonical);
		if (n > best_len) {
			best = &map->roots[i];
			best_len = n;
		}
	}
	if (!best)
		return -ENOENT;
	if (asprintf(out, "%s%s", best->local, canonical + best_len) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Can C continue a path component? Bytes that end a path in text: quotes, spaces, ':' ... */
static int path_char(char c)
{
	return c != '\0' && c != '"' && c != '\'' && c != ' ' && c != '\n' && c != '\t' && c != ':'
	       && c != ',' && c != ')' && c != ']' && c != '\\' && c != '/';
}

int path_map_rewrite_to_local(const struct path_map *map, const char *text, size_t len, char **out,
			      size_t *outlen)
{
	size_t cap = len + 1, used = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len;) {
		const struct path_root *best = NULL;
		size_t best_len = 0;
		const char *src;
		size_t n;

		if (text[i] == '/') {
			for (size_t r = 0; r < map->n; r++) {
				size_t cl = strlen(map->roots[r].canonical);
				if (cl > best_len && cl <= len - i
				    && memcmp(text + i, map->roots[r].canonical, cl) == 0
				    && (i + cl == len || !path_char(text[i + cl]) || text[i + cl] == '/')) {
					best = &map->roots[r];
					best_len = cl;
				}
			}
		}
		if (best) {
			src = best->local;
			n = strlen(src);
			i += best_len;
		} else {
			src = text + i;
			n = 1;
			i++;
		}
		if (used + n + 1 > cap) {
			size_t ncap = (used + n + 1) * 2;
			char *grown = realloc(buf, ncap);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
			cap = ncap;
		}
		memcpy(buf + used, src, n);
		used += n;
	}
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	return 0;
}

int path_mkdir_parents(const char *dir, unsigned mode)
{
	char *p = strdup(dir);
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; ret == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
			ret = -errno;
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return ret;
}
