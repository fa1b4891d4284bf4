/* cachepotd's settings: defaults, the config file, and the id lists of the command line.
 *
 * Config file format (see daemon/cachepotd.conf.example): one "name = value" per line; blank
 * lines and lines starting with '#' are ignored; names are those of the long options without
 * "--" and with '-' or '_' alike (store, socket, jobs, queue, allow-uid, allow-gid,
 * max-upload-bytes, max-blob-bytes, max-input-bytes, max-output-bytes, timeout-ms,
 * memory-bytes, max-connections-per-peer, unused-toolchain-seconds, max-size (a size: the
 * store's quota, fs/gc.h), gc-interval-seconds, listen, listen-tls,
 * tls-cert, tls-key, client-ca, sandbox (bwrap, docker or kvm), docker-socket, kvm-dir,
 * verify-sample (a fraction from 0 to 1, in decimal: 0.01, 1, 0), allow-no-cgroup-limits and
 * kvm-allow-tcg, these two "yes" or "no"; on the command line they take no value and mean
 * yes). Later settings override earlier ones; the command line
 * overrides the file.
 * Numbers are decimal with an optional K, M, G or T suffix (powers of 1024).
 */
#ifndef CACHEPOT_DAEMON_SETTINGS_H
#define CACHEPOT_DAEMON_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

#define DAEMON_DEFAULT_STORE "/var/lib/cachepot"
#define DAEMON_DEFAULT_SOCKET "/run/cachepot/cachepotd.sock"
#define DAEMON_IDS_MAX 256            /* entries in each allow-list */
#define DAEMON_CONFIG_LINE_MAX 4096   /* longest line of a config file */
#define DAEMON_CONFIG_BYTES_MAX (1u << 20)
#define DAEMON_DEFAULT_MAX_CONNECTIONS_PER_PEER 64
#define DAEMON_DEFAULT_UNUSED_TOOLCHAIN_SECONDS 3600
#define DAEMON_UNUSED_TOOLCHAIN_SECONDS_MAX (366u * 24 * 3600)
#define DAEMON_DEFAULT_UPLOAD_IDLE_SECONDS 300
#define DAEMON_UPLOAD_IDLE_SECONDS_MAX 86400
#define DAEMON_DEFAULT_GC_INTERVAL_SECONDS 300
#define DAEMON_GC_INTERVAL_SECONDS_MAX 86400

struct daemon_config {
	char *store_dir;             /* owned */
	char *socket_path;           /* owned */
	unsigned jobs;               /* worker threads (concurrent sandboxes) */
	unsigned queue_max;          /* jobs waiting for a worker; beyond it: 503 */
	uid_t allow_uids[DAEMON_IDS_MAX];
	size_t n_allow_uids;
	gid_t allow_gids[DAEMON_IDS_MAX];
	size_t n_allow_gids;
	uint64_t max_upload_bytes;   /* a toolchain archive, and the largest body of a writer's
	                              * connection (daemon/peers.h) */
	uint64_t max_blob_bytes;     /* one blob upload */
	uint64_t max_input_bytes;    /* the sum of a job's input files */
	uint64_t max_output_bytes;   /* one output file, and the sandbox's output tmpfs */
	unsigned timeout_ms;         /* sandbox wall clock; 0 = the sandbox default */
	uint64_t memory_bytes;       /* sandbox memory; 0 = the sandbox default */
	unsigned max_connections_per_peer;   /* per uid (Unix socket) or address (TCP) */
	int allow_no_cgroup_limits;  /* run jobs with rlimits alone when no cgroup limits apply */
	enum sandbox_backend sandbox;  /* which sandbox runs the jobs (default bwrap) */
	char *docker_socket;         /* dockerd's API socket, owned; NULL: the sandbox default */
	char *kvm_dir;               /* the kvm backend's guest, owned; NULL: the sandbox default */
	int kvm_allow_tcg;           /* kvm: QEMU may emulate when there is no /dev/kvm */
	unsigned unused_toolchain_seconds;   /* an upload no job named is removed after it; 0 never */
	unsigned upload_idle_seconds;        /* an upload in parts with no part for this long is dropped */
	double verify_sample;        /* the fraction of hits rebuilt and compared (daemon/verify.h) */
	uint64_t max_size;           /* bytes of blobs the store may hold (fs/gc.h); 0 no limit */
	unsigned gc_interval_seconds;        /* how often the store is collected under max_size */
	/* The network (daemon/listen.h); each owned, NULL when not set. */
	char *listen;                /* ADDRESS:PORT of plain HTTP, reads only */
	char *listen_tls;            /* ADDRESS:PORT of TLS, writes with a client certificate */
	char *tls_cert, *tls_key;    /* PEM files of the TLS listener's certificate chain and key */
	char *client_ca;             /* PEM file of the CA(s) whose client certificates may write */
};

/* Fill CFG with the defaults (jobs = online CPUs). Returns 0 or -ENOMEM. */
int daemon_config_init(struct daemon_config *cfg) __attribute__((warn_unused_result));
/* Free what CFG owns. */
void daemon_config_release(struct daemon_config *cfg);

/* Apply one setting NAME = VALUE. Returns 0, or -EINVAL with a message in ERR. */
int daemon_config_set(struct daemon_config *cfg, const char *name, const char *value,
		      char *err, size_t errlen) __attribute__((warn_unused_result));

/* After every setting: the settings that go together are all there (--listen-tls needs
 * --tls-cert, --tls-key and --client-ca, and those need --listen-tls). 0, or -EINVAL with a
 * message naming the options in ERR. */
int daemon_config_check(const struct daemon_config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Read the config file PATH and apply each setting. Returns 0, or -errno with a message
 * (naming the line) in ERR. */
int daemon_config_load(struct daemon_config *cfg, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parse a size: decimal digits, optional K/M/G/T suffix. 0 or -EINVAL (also on overflow). */
int daemon_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

#endif
