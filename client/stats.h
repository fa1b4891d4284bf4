/* Statistics shared by every wrapper process: CACHE_DIR/stats.json, updated under an exclusive
 * flock on CACHE_DIR/stats.lock (read, add, write a temp file, rename), so concurrent wrappers
 * started by one cargo never lose a count. */
#ifndef CACHEPOT_CLIENT_STATS_H
#define CACHEPOT_CLIENT_STATS_H

#include <stdint.h>

#include "client/settings.h"
#include "hash/args.h"
#include "hash/c_args.h"

/* One wrapper run's counts. A C or C++ compile (C_COMPILE) is counted apart from rustc's,
 * under "c" in stats.json: hits, misses, fallbacks, errors, compile_failures, bytes and times
 * as for rustc, and its own not_cacheable reasons (hash/c_args.h's names). */
struct stats_delta {
	unsigned hits, misses, fallbacks, errors, compile_failures;
	unsigned direct_hits;          /* hits found without the dep-info pass (direct mode) */
	unsigned published_list_hits;  /* ... through a list the daemon published */
	int not_cacheable;          /* an enum rustc_reason to count, or -1 */
	int c_compile;              /* 1 for a C or C++ compile */
	int c_not_cacheable;        /* an enum c_reason to count (C_CACHEABLE: none) */
	const char *refused_hit;    /* why a hit was refused (counted under refused_hits), or NULL */
	uint64_t bytes_from_cache;  /* output bytes written from the cache */
	uint64_t us_from_cache;     /* time spent serving hits and misses from the cache */
	uint64_t us_saved_estimate; /* the recorded compile time of each hit */
};

/* Add DELTA to the statistics in CONFIG's cache directory. Errors are ignored after a warning
 * on stderr: statistics never fail a build. */
void stats_record(const struct client_config *config, const struct stats_delta *delta);

/* `--show-stats [--json]` and `--zero-stats`; return the exit status. */
int stats_command_show(const struct client_config *config, int json);
int stats_command_zero(const struct client_config *config);

#endif
