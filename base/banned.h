/* Functions the tree does not call, and the build refuses: every C file is compiled with
 * -include base/banned.h (AM_CPPFLAGS, and the fuzz targets' flags), and a poisoned name is a
 * compile error wherever it appears after this point.
 *
 *   strcpy, strcat   unbounded copies: memcpy with a length checked first, or snprintf
 *   sprintf          unbounded formatting: snprintf, checking its result, or asprintf
 *   gets             cannot be used safely at all: fgets or getline
 *
 * config.h comes first so that the feature macros it defines (_GNU_SOURCE) are in force for
 * the system headers included here; the headers that declare the names come next, since a
 * poisoned name may not appear even in a declaration (and glibc's fortified string.h names
 * them in its inline wrappers). */
#ifndef CACHEPOT_BASE_BANNED_H
#define CACHEPOT_BASE_BANNED_H

#include "config.h"

#include <stdio.h>
#include <string.h>

#pragma GCC poison strcpy strcat sprintf gets

#endif
