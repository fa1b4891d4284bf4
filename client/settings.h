/* The wrapper's configuration: /etc/cachepot/config (or $CACHEPOT_CONFIG), then the
 * environment. The file has lines "name = value"; '#' starts a comment. Names and variables:
 *   mount      CACHEPOT_MOUNT      where cachepot-fs shows the store   (/var/cache/cachepot)
 *   socket     CACHEPOT_SOCKET     the daemon's socket      (/run/cachepot/cachepotd.sock)
 *   disable    CACHEPOT_DISABLE    1: run rustc directly, touch nothing           (0)
 *   log        CACHEPOT_LOG        a file to append one line per invocation to    (none)
 *   cache_dir  CACHEPOT_CACHE_DIR  toolchain ids, direct-mode input lists, statistics,
 *                                  the toolchain upload lock, an absolute path
 *                                  ($XDG_CACHE_HOME/cachepot, else $HOME/.cache/cachepot,
 *                                  else the passwd home's; else none: see cache_dir.h)
 *   timeout    CACHEPOT_TIMEOUT    seconds to wait for the daemon on a miss       (900)
 *   direct     CACHEPOT_DIRECT     0: run the dep-info pass on every invocation   (1)
 *   verify     CACHEPOT_VERIFY     who hashes the bytes of a hit: "mount" leaves it to a
 *                                  cachepot-fs mount (it hashes every blob on first open
 *                                  and refuses a corrupt one) and hashes here what any
 *                                  other directory at the mount path serves; "always"
 *                                  hashes every byte here too                     (mount)
 *   server     CACHEPOT_SERVER     a remote worker, https://HOST:PORT (or http:// for a worker
 *                                  that only serves reads); misses go there instead of the
 *                                  socket                                         (none)
 *   tls_cert   CACHEPOT_TLS_CERT   the client certificate (PEM) the worker lets write   (none)
 *   tls_key    CACHEPOT_TLS_KEY    its private key (PEM)                          (none)
 *   cacert     CACHEPOT_CACERT     the CA (PEM) the worker's certificate is checked against
 *                                  (none: the system's CAs)
 *   trust      CACHEPOT_TRUST      the public keys a manifest must be signed with: a file of
 *                                  64-hex Ed25519 keys, one a line (fs/manifest.h's trust
 *                                  file, as cachepot-fs's trust= takes)   (none: the first of
 *                                  CACHEPOT_DEFAULT_TRUST and CACHEPOT_DEFAULT_STORE_KEY that
 *                                  can be read; with no key every hit is refused)
 * An empty value unsets server, tls_cert, tls_key, cacert and trust (so the environment can undo
 * the file). The four files must be absolute paths: cargo runs rustc from different directories.
 */
#ifndef CACHEPOT_CLIENT_SETTINGS_H
#define CACHEPOT_CLIENT_SETTINGS_H

#define CACHEPOT_DEFAULT_MOUNT "/var/cache/cachepot"
#define CACHEPOT_DEFAULT_SOCKET "/run/cachepot/cachepotd.sock"
#define CACHEPOT_DEFAULT_CONFIG SYSCONFDIR "/cachepot/config"
/* The trust file of a machine that mounts a remote worker (the one cachepot-fs is given), and
 * the public key of a store on this machine at cachepotd's default --store. */
#define CACHEPOT_DEFAULT_TRUST SYSCONFDIR "/cachepot/trusted-keys"
#define CACHEPOT_DEFAULT_STORE_KEY "/var/lib/cachepot/key/ed25519.pub"

struct client_config {
	char *mount;
	char *socket;
	int disable;
	char *log;       /* NULL when not logging */
	char *cache_dir; /* NULL: run without one (see client/cache_dir.h) */
	unsigned timeout;
	int direct;      /* reuse recorded input lists (see hash/invocation.h) */
	int verify_always; /* hash every byte of a hit here, even from a cachepot-fs mount */
	char *server;    /* "http(s)://HOST:PORT" without a trailing '/', or NULL: the socket */
	char *tls_cert;  /* absolute paths, or NULL */
	char *tls_key;
	char *cacert;
	char *trust;     /* an absolute path, or NULL: the defaults */
};

/* Fill CONFIG with defaults, the file, then the environment. Always leaves a usable CONFIG
 * (defaults) even when it returns an error (-errno for an unreadable file, -EINVAL for a bad
 * line). Release with client_config_release. */
int client_config_load(struct client_config *config);
void client_config_release(struct client_config *config);

#endif
