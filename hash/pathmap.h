/* Path mapping between a machine's absolute paths and the canonical roots inside the sandbox.
 *
 * A map is a list of (local prefix, canonical prefix) roots. A local path maps through the root
 * with the longest local prefix that matches at a component boundary; a canonical path maps back
 * through the longest canonical prefix. Paths are normalised lexically first ("//", "/./" and
 * "dir/.." collapsed), never through the filesystem: the sandbox has no symlinks, so what the
 * kernel resolves there is what lexical resolution gives here.
 */
#ifndef CACHEPOT_HASH_PATHMAP_H
#define CACHEPOT_HASH_PATHMAP_H

#include <stddef.h>

struct path_root {
	char *local;     /* normalised absolute local prefix, no trailing slash */
	char *canonical; /* absolute canonical prefix, no trailing slash */
};

struct path_map {
	struct path_root *roots;
	size_t n;
};

/* Free every root. */
void path_map_release(struct path_map *map);

/* Add a root. LOCAL is normalised; a LOCAL already present is left as it was (the first
 * added wins). Returns 0, -EINVAL for a relative LOCAL or CANONICAL, -ENOMEM. */
int path_map_add(struct path_map *map, const char *local, const char *canonical)
	__attribute__((warn_unused_result));

/* Normalise the absolute PATH lexically into a new string (*OUT, caller frees). Relative paths
 * are first joined to BASE (absolute; may be NULL for absolute PATH). Returns 0, -EINVAL when
 * PATH is relative and BASE is NULL, -ENOMEM. */
int path_normalise(const char *path, const char *base, char **out) __attribute__((warn_unused_result));

/* Map the absolute, normalised LOCAL path to its canonical form (*OUT, caller frees).
 * Returns 0, -ENOENT when it lies under no root, -ENOMEM. */
int path_map_to_canonical(const struct path_map *map, const char *local, char **out)
	__attribute__((warn_unused_result));

/* The inverse of path_map_to_canonical: map the canonical CANONICAL back through the root with
 * the longest canonical prefix. Returns 0, -ENOENT when under no root, -ENOMEM. */
int path_map_to_local(const struct path_map *map, const char *canonical, char **out)
	__attribute__((warn_unused_result));

/* Rewrite every canonical root prefix occurring in TEXT (LEN bytes; occurrences start at a
 * canonical prefix followed by '/', or by a character that cannot continue a path component)
 * into its local prefix. *OUT is a new NUL-terminated buffer of *OUTLEN bytes; caller frees.
 * Returns 0 or -ENOMEM. */
int path_map_rewrite_to_local(const struct path_map *map, const char *text, size_t len, char **out,
			      size_t *outlen) __attribute__((warn_unused_result));

/* mkdir -p: create DIR and its missing parents with MODE. Returns 0 (also when DIR exists) or
 * -errno. */
int path_mkdir_parents(const char *dir, unsigned mode) __attribute__((warn_unused_result));

#endif
