/* cachepotd: options, start-up (store, sweep, then server.c: socket, workers), the event loop,
 * shutdown. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "base/hex.h"
#include "daemon/settings.h"
#include "daemon/daemon.h"
#include "daemon/server.h"
#include "daemon/store_gc.h"
#include "daemon/toolchain_unpack.h"
#include "fs/fsck.h"
#include "fs/store.h"
#include "sandbox/sandbox.h"

enum {
	OPT_CONFIG = 'c', OPT_HELP = 'h', OPT_FSCK = 0x100, OPT_VERSION, OPT_PRINT_PUBLIC_KEY,
	OPT_SETTING
};

static const struct option options[] = {
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "fsck", no_argument, NULL, OPT_FSCK },
	{ "print-public-key", no_argument, NULL, OPT_PRINT_PUBLIC_KEY },
	/* Every other option is a setting of the config file under the same name. */
	{ "store", required_argument, NULL, OPT_SETTING },
	{ "socket", required_argument, NULL, OPT_SETTING },
	{ "jobs", required_argument, NULL, OPT_SETTING },
	{ "queue", required_argument, NULL, OPT_SETTING },
	{ "allow-uid", required_argument, NULL, OPT_SETTING },
	{ "allow-gid", required_argument, NULL, OPT_SETTING },
	{ "max-upload-bytes", required_argument, NULL, OPT_SETTING },
	{ "max-blob-bytes", required_argument, NULL, OPT_SETTING },
	{ "max-input-bytes", required_argument, NULL, OPT_SETTING },
	{ "max-output-bytes", required_argument, NULL, OPT_SETTING },
	{ "timeout-ms", required_argument, NULL, OPT_SETTING },
	{ "memory-bytes", required_argument, NULL, OPT_SETTING },
	{ "max-connections-per-peer", required_argument, NULL, OPT_SETTING },
	{ "unused-toolchain-seconds", required_argument, NULL, OPT_SETTING },
	{ "upload-idle-seconds", required_argument, NULL, OPT_SETTING },
	{ "max-size", required_argument, NULL, OPT_SETTING },
	{ "gc-interval-seconds", required_argument, NULL, OPT_SETTING },
	{ "listen", required_argument, NULL, OPT_SETTING },
	{ "listen-tls", required_argument, NULL, OPT_SETTING },
	{ "tls-cert", required_argument, NULL, OPT_SETTING },
	{ "tls-key", required_argument, NULL, OPT_SETTING },
	{ "client-ca", required_argument, NULL, OPT_SETTING },
	{ "allow-no-cgroup-limits", no_argument, NULL, OPT_SETTING },
	{ "sandbox", required_argument, NULL, OPT_SETTING },
	{ "docker-socket", required_argument, NULL, OPT_SETTING },
	{ "verify-sample", required_argument, NULL, OPT_SETTING },
	{ "kvm-dir", required_argument, NULL, OPT_SETTING },
	{ "kvm-allow-tcg", no_argument, NULL, OPT_SETTING },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cachepotd [--store DIR] [--socket PATH] [--jobs N] [--queue N] [--config FILE]\n"
		"                 [--allow-uid UID[,UID...]] [--allow-gid GID[,GID...]]\n"
		"                 [--max-upload-bytes N] [--max-blob-bytes N] [--max-input-bytes N]\n"
		"                 [--max-output-bytes N] [--timeout-ms N] [--memory-bytes N]\n"
		"                 [--max-connections-per-peer N] [--unused-toolchain-seconds N]\n"
		"                 [--upload-idle-seconds N] [--max-size SIZE] [--gc-interval-seconds N]\n"
		"                 [--listen ADDRESS:PORT]\n"
		"                 [--listen-tls ADDRESS:PORT --tls-cert FILE --tls-key FILE --client-ca FILE]\n"
		"                 [--allow-no-cgroup-limits] [--sandbox bwrap|docker|kvm] [--docker-socket PATH]\n"
		"                 [--kvm-dir DIR] [--kvm-allow-tcg] [--verify-sample FRACTION]\n"
		"       cachepotd [--store DIR] --fsck\n"
		"       cachepotd [--store DIR] --print-public-key\n"
		"Compile rustc jobs in sandboxes and publish them into the store (see cachepotd(8)).\n"
		"Defaults: --store %s --socket %s --jobs <cores>\n",
		DAEMON_DEFAULT_STORE, DAEMON_DEFAULT_SOCKET);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	fprintf(stderr, "cachepotd: %s received\n", strsignal((int)sig));
	server_begin_shutdown(arg);
}

/* The store's public key, the one readers pin (cachepot-fs -o trust=FILE), as 64 hex digits
 * and a newline on stdout. The store is opened as a reader, so this works next to a running
 * daemon; a store that does not exist yet is created, so the key can be handed out before the
 * first start. */
static int print_public_key(const char *dir)
{
	unsigned char key[32];
	char hex[2 * sizeof(key) + 1];
	struct store *store;
	int ret;

	ret = store_open(dir, STORE_READ_ONLY, &store);
	if (ret == -ENOENT)
		ret = store_open(dir, STORE_CREATE, &store);
	if (ret < 0) {
		fprintf(stderr, "cachepotd: opening the store %s: %s\n", dir, strerror(-ret));
		return 1;
	}
	store_public_key(store, key);
	store_close(store);
	hex_encode(key, sizeof(key), hex);
	if (printf("%s\n", hex) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "cachepotd: writing the key: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* The sandbox runs jobs as an unprivileged user and bwrap reaches the toolchain and input trees
 * through their paths under the store, so every directory on the way must be searchable by
 * others. A 0700 parent (mktemp -d, a home directory) would make every job fail with a
 * "Permission denied" from bwrap; say so once, at start. */
static int store_reachable_by_sandbox(const char *dir)
{
	char *real = realpath(dir, NULL);
	int ok = 1;

	if (!real) {
		fprintf(stderr, "cachepotd: %s: %s\n", dir, strerror(errno));
		return 0;
	}
	for (char *p = real + 1;; p++) {
		struct stat st;
		char c = *p;
		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (stat(real, &st) == 0 && S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH)) {
			fprintf(stderr, "cachepotd: %s is not searchable by others (mode %04o): the sandbox "
				"cannot reach the store below it; chmod o+x it or choose another --store\n",
				real, (unsigned)(st.st_mode & 07777));
			ok = 0;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(real);
	return ok;
}

int main(int argc, char **argv)
{
	struct daemon_config cfg;
	struct event *sigterm_event = NULL, *sigint_event = NULL;
	struct daemon d;
	char err[512];
	const char *config_file = NULL;
	int opt, idx, fsck = 0, print_key = 0, status = 1, ret;
	unsigned swept = 0;

	/* `cachepot fsck ARGS` runs here as `cachepotd --fsck-command ARGS`: the wrapper does not
	 * link the store. */
	if (argc >= 2 && strcmp(argv[1], "--fsck-command") == 0) {
		argv[1] = "fsck";
		return fsck_command(argc - 1, argv + 1);
	}
	/* `cachepot gc --store DIR ARGS` likewise, against a store no daemon holds. */
	if (argc >= 2 && strcmp(argv[1], "--gc-command") == 0) {
		argv[1] = "gc";
		return store_gc_command(argc - 1, argv + 1);
	}
	if (daemon_config_init(&cfg) < 0) {
		fprintf(stderr, "cachepotd: out of memory\n");
		return 1;
	}
	/* Pass 1: the config file, so that the command line overrides it. */
	while ((opt = getopt_long(argc, argv, "c:h", options, &idx)) != -1) {
		if (opt == OPT_CONFIG)
			config_file = optarg;
		else if (opt == OPT_HELP) {
			usage(stdout);
			daemon_config_release(&cfg);
			return 0;
		} else if (opt == OPT_VERSION) {
			printf("cachepotd %s\n", PACKAGE_VERSION);
			daemon_config_release(&cfg);
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			daemon_config_release(&cfg);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		daemon_config_release(&cfg);
		return 2;
	}
	if (config_file && daemon_config_load(&cfg, config_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "cachepotd: %s\n", err);
		daemon_config_release(&cfg);
		return 2;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", options, &idx)) != -1) {
		if (opt == OPT_FSCK)
			fsck = 1;
		else if (opt == OPT_PRINT_PUBLIC_KEY)
			print_key = 1;
		else if (opt == OPT_SETTING
			 && daemon_config_set(&cfg, options[idx].name, optarg ? optarg : "yes", err,
					      sizeof(err)) < 0) {
			fprintf(stderr, "cachepotd: --%s\n", err);
			daemon_config_release(&cfg);
			return 2;
		}
	}
	if (print_key) {
		status = print_public_key(cfg.store_dir);
		daemon_config_release(&cfg);
		return status;
	}
	if (daemon_config_check(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "cachepotd: %s\n", err);
		daemon_config_release(&cfg);
		return 2;
	}
	if (fsck) {
		char *fsck_argv[] = { "fsck", cfg.store_dir, NULL };
		status = fsck_command(2, fsck_argv);
		daemon_config_release(&cfg);
		return status;
	}

	memset(&d, 0, sizeof(d));
	d.cfg = &cfg;
	d.started = time(NULL);
	if (gethostname(d.hostname, sizeof(d.hostname) - 1) < 0)
		memcpy(d.hostname, "unknown", sizeof("unknown"));
	umask(022);
	signal(SIGPIPE, SIG_IGN);

	if (mkdir(cfg.store_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "cachepotd: %s: %s\n", cfg.store_dir, strerror(errno));
		goto out;
	}
	if (!store_reachable_by_sandbox(cfg.store_dir))
		goto out;
	ret = store_open(cfg.store_dir, STORE_CREATE, &d.store);
	if (ret < 0) {
		fprintf(stderr, "cachepotd: opening the store %s: %s%s\n", cfg.store_dir, strerror(-ret),
			ret == -EBUSY ? " (another cachepotd holds it)" : "");
		goto out;
	}
	{
		unsigned char key[32];
		store_public_key(d.store, key);
		hex_encode(key, sizeof(key), d.store_id);
	}
	/* Before any worker thread exists: on cgroup v2 this moves the daemon into its leaf. */
	ret = sandbox_limits_check(NULL, err, sizeof(err));
	if (ret < 0 && !(ret == -ENOTSUP && cfg.allow_no_cgroup_limits)) {
		fprintf(stderr, "cachepotd: %s\n", err);
		goto out;
	}
	fprintf(stderr, "cachepotd: %s%s\n", err,
		ret < 0 ? "; jobs run with rlimits alone (--allow-no-cgroup-limits)" : "");
	/* The runs of a daemon killed mid-job (SIGKILL, OOM) leave their cgroups behind. */
	ret = sandbox_cgroups_sweep(NULL, &swept);
	if (ret < 0)
		fprintf(stderr, "cachepotd: sweeping the cgroups of earlier runs: %s\n", strerror(-ret));
	if (swept)
		fprintf(stderr, "cachepotd: removed %u cgroup%s an earlier daemon's runs left behind\n",
			swept, swept == 1 ? "" : "s");
	swept = 0;
	if (cfg.sandbox == SANDBOX_BACKEND_DOCKER) {
		ret = sandbox_docker_check(cfg.docker_socket, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: --sandbox docker: %s\n", err);
			goto out;
		}
		fprintf(stderr, "cachepotd: sandbox docker: %s\n", err);
		unsigned removed;
		ret = sandbox_docker_sweep(cfg.docker_socket, d.store_id, &removed, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: --sandbox docker: removing the containers an earlier "
					"run left: %s\n", err);
			goto out;
		}
		if (removed)
			fprintf(stderr, "cachepotd: sandbox docker: removed %u container(s) an earlier run "
					"of this store left behind\n", removed);
	}
	if (cfg.sandbox == SANDBOX_BACKEND_KVM) {
		ret = sandbox_kvm_check(cfg.kvm_dir, cfg.kvm_allow_tcg, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "cachepotd: --sandbox kvm: %s\n", err);
			goto out;
		}
		fprintf(stderr, "cachepotd: sandbox kvm: %s\n", err);
	}
	ret = sandbox_ids_check(err, sizeof(err));
	if (ret < 0) {
		fprintf(stderr, "cachepotd: %s: jobs would share it; remove it or renumber it\n", err);
		goto out;
	}
	ret = store_trees_open(d.store, cfg.store_dir, SANDBOX_TREES_GID, &d.trees);
	if (ret < 0) {
		fprintf(stderr, "cachepotd: store layout: %s\n", strerror(-ret));
		goto out;
	}
	ret = store_sweep_jobs(d.trees, &swept);
	if (ret < 0)
		fprintf(stderr, "cachepotd: sweeping jobs/: %s\n", strerror(-ret));
	if (swept)
		fprintf(stderr, "cachepotd: swept %u stale job director%s\n", swept,
			swept == 1 ? "y" : "ies");
	toolchain_sweep(store_toolchains_fd(d.trees));
	if (cfg.unused_toolchain_seconds) {
		(void)toolchain_retire_unused(store_toolchains_fd(d.trees), time(NULL),
					      cfg.unused_toolchain_seconds);
		toolchain_remove_retired(store_toolchains_fd(d.trees));
	}

	if (evthread_use_pthreads() < 0 || !(d.base = event_base_new())) {
		fprintf(stderr, "cachepotd: libevent initialisation failed\n");
		goto out;
	}
	if (server_start(&d) < 0)
		goto out;
	sigterm_event = evsignal_new(d.base, SIGTERM, on_signal, &d);
	sigint_event = evsignal_new(d.base, SIGINT, on_signal, &d);
	if (!sigterm_event || !sigint_event || evsignal_add(sigterm_event, NULL) < 0
	    || evsignal_add(sigint_event, NULL) < 0) {
		fprintf(stderr, "cachepotd: cannot handle signals\n");
		goto out;
	}
	event_base_dispatch(d.base);
	status = 0;
out:
	if (sigterm_event)
		event_free(sigterm_event);
	if (sigint_event)
		event_free(sigint_event);
	server_stop(&d);
	if (status == 0 && getenv("LISTEN_FDS") == NULL)
		unlink(cfg.socket_path);
	if (d.base)
		event_base_free(d.base);
	store_trees_close(d.trees);
	if (d.store)
		store_close(d.store);
	libevent_global_shutdown();
	daemon_config_release(&cfg);
	fprintf(stderr, "cachepotd: stopped\n");
	return status;
}
