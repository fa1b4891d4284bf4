/* Parsing the Makefile-style dep-info rustc writes with --emit=dep-info.
 *
 * Format (rustc): one rule per output, "target: dep dep ..." with spaces in names escaped as
 * "\ "; then a phony rule "dep:" per dependency; then comment lines "# env-dep:NAME=VALUE"
 * (VALUE with "\n", "\r" and "\\" escaped) or "# env-dep:NAME" for a variable read while unset.
 * With -Z binary-dep-depinfo the rlib/rmeta files rustc loaded are listed as dependencies too.
 * Other comments ("# checksum:...") are ignored.
 */
#ifndef CACHEPOT_HASH_DEPINFO_H
#define CACHEPOT_HASH_DEPINFO_H

#include <stddef.h>

/* Bounds: the largest dep-info text accepted, the most files and env-deps it may list. */
#define DEPINFO_TEXT_MAX (64u << 20)
#define DEPINFO_FILES_MAX 65536
#define DEPINFO_ENV_MAX 4096

struct depinfo_env {
	char *name;
	char *value; /* NULL when the variable was read while unset */
};

struct depinfo {
	char **files;      /* every prerequisite, unescaped, each listed once, in order of appearance */
	size_t n_files;
	struct depinfo_env *env;
	size_t n_env;
};

/* Parse LEN bytes at TEXT (need not be NUL-terminated) into DEPINFO (zeroed first).
 * Returns 0; -EINVAL on a malformed line (no ':' in a rule, an env-dep without a name),
 * -E2BIG past the bounds, -ENOMEM. DEPINFO is released on error. */
int depinfo_parse(const char *text, size_t len, struct depinfo *depinfo)
	__attribute__((warn_unused_result));

void depinfo_release(struct depinfo *depinfo);

#endif
