/* cachepot: the rustc wrapper (RUSTC_WRAPPER) and its admin commands. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/cache_dir.h"
#include "client/compiler.h"
#include "client/settings.h"
#include "client/explain.h"
#include "client/wrapper.h"
#include "client/submit.h"
#include "client/verify.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: cachepot RUSTC ARGS...            compile through the cache (RUSTC_WRAPPER)\n"
		"       cachepot CC ARGS...               compile C or C++ through the cache (the cc crate)\n"
		"       cachepot --explain RUSTC|CC ARGS... print the job and key, compile nothing\n"
		"       cachepot --show-stats [--json]    print the statistics\n"
		"       cachepot --zero-stats             reset the statistics\n"
		"       cachepot fsck [-q] [STORE]        verify a store\n"
		"       cachepot verify KEY               rebuild a published key and compare\n"
		"       cachepot gc [--dry-run] [--max-size SIZE] [--pin KEY] [--unpin KEY] [--json]\n"
		"                   [--store DIR]         collect the store down to SIZE\n"
		"       cachepot --version | --help\n");
}

/* `cachepot fsck [-q] [STORE]` is cachepotd's: the store code (RocksDB) stays out of the
 * wrapper, which every rustc invocation starts. */
static int run_fsck(int argc, char **argv)
{
	char daemon[PATH_MAX];
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	int n = 0;

	if (!args)
		return 2;
	sibling_program("cachepotd", SBINDIR, daemon, sizeof(daemon));
	args[n++] = daemon;
	args[n++] = "--fsck-command";
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	execv(daemon, args);
	fprintf(stderr, "cachepot fsck: cannot run %s: %s\n", daemon, strerror(errno));
	free(args);
	return 2;
}

/* `cachepot gc ARGS` (client/gc.h): with --store DIR, cachepotd's `--gc-command ARGS DIR`
 * collects a store no daemon holds; without, cachepot-submit asks the daemon. */
static int run_gc(int argc, char **argv)
{
	char program[PATH_MAX];
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	const char *store = NULL;
	int n = 0;

	if (!args)
		return 2;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
			store = argv[i + 1];
		else if (strncmp(argv[i], "--store=", 8) == 0)
			store = argv[i] + 8;
	if (store)
		sibling_program("cachepotd", SBINDIR, program, sizeof(program));
	else
		sibling_program("cachepot-submit", PKGLIBEXECDIR, program, sizeof(program));
	args[n++] = program;
	args[n++] = "--gc-command";
	for (int i = 1; i < argc; i++) {
		if (store && strcmp(argv[i], "--store") == 0)
			i++;
		else if (!store || strncmp(argv[i], "--store=", 8) != 0)
			args[n++] = argv[i];
	}
	if (store)
		args[n++] = (char *)store;
	args[n] = NULL;
	execv(program, args);
	fprintf(stderr, "cachepot gc: cannot run %s: %s\n", program, strerror(errno));
	free(args);
	return 2;
}

/* Where `cachepot PROGRAM` found PROGRAM. */
static char program_path[PATH_MAX];

/* `cachepot PROGRAM ARGS...`: find PROGRAM as the shell would and say what it is. Returns -1
 * for a rustc, with ARGV[0] now its path; -2 for a C or C++ compiler, found at program_path
 * (ARGV[0] stays as given: clang reads its mode from it); or the exit status when PROGRAM
 * could not be run. Runs anything else in place of this process, before any configuration is
 * read or statistics are written, so it costs only the lookup. */
static int run_unless_compiler(int argc, char **argv)
{
	int ret = compiler_find(argv[0], program_path, sizeof(program_path));

	if (ret < 0)
		return compiler_not_found(argv[0], ret);
	switch (compiler_identify(argv[0], program_path, argc - 1, argv + 1)) {
	case COMPILER_RUSTC:
		/* The rustc path execs and hashes the file found, not a bare name. Its argv[0]
		 * keeps the name's last component, which is what a rustup proxy reads. */
		argv[0] = program_path;
		return -1;
	case COMPILER_C:
		return -2;
	case COMPILER_OTHER:
		break;
	}
	return compiler_exec(program_path, argv);
}

/* Use CONFIG's cache directory only when it passes cache_dir_prepare; otherwise say why, once,
 * and go on without one. */
static void settle_cache_dir(struct client_config *config)
{
	char err[PATH_MAX + 200];

	if (!config->cache_dir) {
		fprintf(stderr, "cachepot: warning: no cache directory (HOME is unset or relative and uid %u "
			"has no home in the passwd database); running without one\n", (unsigned)geteuid());
		return;
	}
	if (cache_dir_prepare(config->cache_dir, err, sizeof(err)) == 0)
		return;
	fprintf(stderr, "cachepot: warning: %s; running without a cache directory\n", err);
	free(config->cache_dir);
	config->cache_dir = NULL;
}

int main(int argc, char **argv)
{
	struct client_config config;
	int c_compiler = 0, verify, ret;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("cachepot %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "fsck") == 0)
		return run_fsck(argc - 1, argv + 1);
	if (strcmp(argv[1], "gc") == 0)
		return run_gc(argc - 1, argv + 1);
	/* `cachepot verify KEY`; a program named verify is still run through the cache as
	 * `cachepot ./verify` or by its path. */
	verify = strcmp(argv[1], "verify") == 0;
	if (argv[1][0] != '-' && !verify) {
		ret = run_unless_compiler(argc - 1, argv + 1);
		if (ret >= 0)
			return ret;
		c_compiler = ret == -2;
	}
	ret = client_config_load(&config);
	if (ret < 0) {
		fprintf(stderr, "cachepot: configuration: %s\n", strerror(-ret));
		/* The wrapper must never break a build: fall through with defaults. */
	}
	if (!config.disable || argv[1][0] == '-')
		settle_cache_dir(&config);
	if (strcmp(argv[1], "--explain") == 0)
		ret = explain_command(argc - 2, argv + 2, config.cache_dir);
	else if (strcmp(argv[1], "--show-stats") == 0)
		ret = stats_command_show(&config, argc > 2 && strcmp(argv[2], "--json") == 0);
	else if (strcmp(argv[1], "--zero-stats") == 0)
		ret = stats_command_zero(&config);
	else if (verify)
		ret = verify_command(&config, argc - 2, argv + 2);
	else if (argv[1][0] == '-') {
		usage(stderr);
		ret = 2;
	} else if (c_compiler)
		ret = wrapper_c_main(&config, program_path, argc - 1, argv + 1);
	else
		ret = wrapper_main(&config, argc - 1, argv + 1);
	client_config_release(&config);
	return ret;
}
