/* The rustc wrapper. */
#include "config.h"

#include "client/wrapper.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hash/invocation.h"

extern char **environ;

/* Replace this process by rustc. */
static int exec_rustc(char **argv)
{
	execv(argv[0], argv);
	fprintf(stderr, "cachepot: cannot run %s: %s\n", argv[0], strerror(errno));
	return 127;
}

int wrapper_main(const struct client_config *config, int argc, char **argv)
{
	struct invocation_options options = { .cache_dir = config->cache_dir, .envp = environ };
	struct stats_delta delta = { .not_cacheable = -1 };
	struct invocation inv;
	int ret;

	if (config->disable)
		return exec_rustc(argv);
	ret = invocation_build(&inv, argv[0], argc - 1, argv + 1, &options);
	if (ret == 0 && inv.reason != RUSTC_CACHEABLE)
		delta.not_cacheable = inv.reason;
	else {
		delta.fallbacks = 1;
		delta.errors = 1;
	}
	invocation_release(&inv);
	stats_record(config, &delta);
	return exec_rustc(argv);
}
