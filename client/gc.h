/* `cachepot gc`: collect the store (fs/gc.h), pin and unpin keys.
 *
 *   cachepot gc [--dry-run] [--max-size SIZE] [--pin KEY]... [--unpin KEY]... [--json]
 *               [--store DIR]
 *
 * Without --store it asks the daemon (POST /v1/gc over the configured socket or server, a
 * writer's request), which holds the store: its --max-size when SIZE is not given. With --store
 * it runs `cachepotd --gc-command` on DIR, for a store no daemon holds. The wrapper links no
 * HTTP client, so `cachepot gc` runs here, in cachepot-submit (client/main.c). */
#ifndef CACHEPOT_CLIENT_GC_H
#define CACHEPOT_CLIENT_GC_H

#include "client/settings.h"

/* The daemon's side: ARGV[0] is "gc", without --store. Returns the exit status: 0 done, 1 failed, 2 usage. */
int gc_command(const struct client_config *config, int argc, char **argv);

#endif
