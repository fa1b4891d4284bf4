/* The rustc wrapper: cachepot RUSTC ARGS... as cargo calls it (see wrapper.c). */
#ifndef CACHEPOT_CLIENT_WRAPPER_H
#define CACHEPOT_CLIENT_WRAPPER_H

#include "client/settings.h"
#include "client/stats.h"

/* Compile `ARGV[0] ARGV[1..]` through the cache, or run it directly. Returns the exit status
 * to exit with (rustc's, or the recorded one on a hit); may not return (exec). */
int wrapper_main(const struct client_config *config, int argc, char **argv);

/* Compile the C or C++ command line `ARGV[0] ARGV[1..]` (ARGV[0] as the caller gave it, found
 * at DRIVER) through the cache (hash/c_invocation.h), or run it directly: what cannot be
 * cached, and any failure of the cache, runs DRIVER here with ARGV unchanged. Returns the exit
 * status to exit with; may not return (exec). */
int wrapper_c_main(const struct client_config *config, const char *driver, int argc, char **argv);

#endif
