/* `cachepot verify KEY`: ask cachepotd to rebuild a published key and compare its outputs with
 * the published ones (POST /v1/verify/<key>, daemon/verify.h), through cachepot-submit, which
 * holds the HTTP client (client/submit.h). */
#ifndef CACHEPOT_CLIENT_VERIFY_H
#define CACHEPOT_CLIENT_VERIFY_H

#include "client/settings.h"

/* ARGV (ARGC entries) after "verify": the key. Prints the daemon's JSON answer on stdout.
 * Returns the exit status: 0 rebuilt the same, 1 different (the key is now marked), 2 no
 * comparison (bad usage, not published, no job record, inputs gone, refused, unreachable),
 * with a line on stderr saying why. */
int verify_command(const struct client_config *config, int argc, char **argv);

#endif
