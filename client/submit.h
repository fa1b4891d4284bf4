/* Handing a miss to cachepot-submit, the helper that talks to cachepotd.
 *
 * The wrapper runs on every rustc invocation, so it links only what a hit needs (OpenSSL's
 * digests and jansson); the HTTP client (libcurl) and the toolchain archiver (libarchive) live in
 * cachepot-submit, started only on a miss. The wrapper writes one JSON document to the helper's
 * standard input:
 *   {"socket": PATH, "server": URL|null, "tls_cert": PATH|null, "tls_key": PATH|null,
 *    "cacert": PATH|null, "cache_dir": PATH|null, "timeout": SECONDS, "key": HEX, "job": <wire job>,
 *    "input_local": {CANONICAL: LOCAL, ...},
 *    "toolchain": {"id": HEX, "files": [{"host","rel","mode","size","sha256"}, ...]}}
 * (server, tls_cert, tls_key and cacert are the settings of the same names, settings.h: with a
 * server the job goes there over TCP, else to the daemon on the socket),
 * and the helper exits 0 (published), 3 (the sandboxed compile failed) or 1 (any other error),
 * with one line on standard error saying why when it is not 0.
 */
#ifndef CACHEPOT_CLIENT_SUBMIT_H
#define CACHEPOT_CLIENT_SUBMIT_H

#include <stddef.h>

#include "client/settings.h"
#include "hash/invocation.h"

/* How a submission ended, as the helper's exit status tells. */
enum submit_result {
	SUBMIT_OK = 0,          /* published (or already was): the outputs are in the store */
	SUBMIT_COMPILE_FAILED,  /* rustc failed in the sandbox (422): not published */
	SUBMIT_ERROR,           /* anything else: no daemon, refused, timed out... */
};

#define SUBMIT_EXIT_COMPILE_FAILED 3
/* A document {"socket", "server", "tls_cert", "tls_key", "cacert", "timeout", "verify": KEY}
 * (no job) asks the helper for `cachepot verify KEY` instead: it prints the daemon's JSON
 * answer on standard output and exits 0 (rebuilt the same), SUBMIT_EXIT_VERIFY_DIFFERENT, or 1
 * (no comparison: refused, failed, unreachable; one line on standard error). */
#define SUBMIT_EXIT_VERIFY_DIFFERENT 4
/* The largest submission document the helper reads. */
#define SUBMIT_DOCUMENT_MAX (256u << 20)

/* Run cachepot-submit for INV (found beside this program, else in PKGLIBEXECDIR). */
enum submit_result submit_via_helper(const struct client_config *config, const struct invocation *inv,
				     char *err, size_t errlen);

/* Where a sibling program NAME is: beside /proc/self/exe when it exists there (a build tree),
 * else FALLBACK_DIR/NAME. Writes into OUT. */
void sibling_program(const char *name, const char *fallback_dir, char *out, size_t len);

#endif
