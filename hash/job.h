/* The job: everything a sandboxed compile can see, its wire format (JSON) and its key.
 *
 * A job is built by the client from a local rustc invocation (hash/invocation.h) or C compile
 * (hash/c_invocation.h) and rebuilt by the daemon from what it materialised; both hash it with
 * job_key. The key (v1) is
 *
 *   SHA-256("cachepot-job-v1\0" || fields)
 *
 * where every field is written as a one-byte tag, its length as a little-endian u64, then its
 * bytes, so no two different jobs can produce the same byte stream by moving a boundary:
 *
 *   'K' kind, "c"                      only in C jobs (a C or C++ compile of a preprocessed
 *                                      unit): rustc jobs keep the keys they had
 *   'T' toolchain id (64 hex chars)    the C part's id in a C job
 *   'L' link-part id (64 hex chars)    only in jobs that link (proc-macro, bin, dylib,
 *                                      cdylib): lib jobs keep the keys they had
 *   'n' argc (u64 LE, 8 bytes)         then 'a' one per argument, in order
 *   'N' env count (u64 LE)             then 'e' name, 'v' value per pair, sorted by name
 *   'C' cwd
 *   'I' input count (u64 LE)           then 'p' path, 'm' mode (u32 LE), 'h' sha256 (32 bytes)
 *                                      per input, sorted by path
 *
 * Any change to this recipe bumps the tag string; tests/hash/test_job.c pins a golden vector.
 *
 * Wire JSON of a job:
 *   {"version":1, ["kind":"c",] "toolchain":"<hex>", ["link_toolchain":"<hex>",]
 *    "argv":["/rust/bin/rustc",...],
 *    "env":[["NAME","VALUE"],...], "cwd":"/cachepot/...",
 *    "inputs":[{"path":"/cachepot/...","mode":420,"sha256":"<hex>"},...]}
 */
#ifndef CACHEPOT_HASH_JOB_H
#define CACHEPOT_HASH_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/roots.h"
#include "hash/digest.h"

#define JOB_KEY_TAG "cachepot-job-v1"

/* Bounds enforced by job_from_json (and by the client before it sends). */
#define JOB_ARGS_MAX 65536
#define JOB_ARG_LEN_MAX 65536
#define JOB_ENV_MAX 4096
#define JOB_ENV_LEN_MAX 131072
#define JOB_INPUTS_MAX 65536
#define JOB_PATH_MAX 4096

struct job_input {
	char *path;                        /* canonical absolute path under /cachepot/ */
	unsigned mode;                     /* 0644 or 0755 */
	unsigned char sha256[DIGEST_SIZE];
};

struct job_env {
	char *name;
	char *value;
};

/* What a job runs: rustc over the base tree (and the link part), or a C or C++ driver over the
 * C part alone, compiling one preprocessed unit with -c to one object. */
enum job_kind {
	JOB_KIND_RUSTC = 0,
	JOB_KIND_C,
};

/* Every pointer is owned by the job and freed by job_release. */
struct job {
	enum job_kind kind;
	char toolchain[DIGEST_HEX_SIZE];   /* hex toolchain id (of the C part, for a C job) */
	char link_toolchain[DIGEST_HEX_SIZE]; /* hex id of the link part, "" when the job does not
					     link; the sandbox then sees both trees merged */
	char **argv;                       /* argv[0] is ROOT_RUSTC (C jobs: ROOT_C_DRIVER or
					      ROOT_CXX_DRIVER); paths canonical */
	size_t argc;
	struct job_env *env;               /* sorted by name, names unique */
	size_t n_env;
	char *cwd;                         /* canonical */
	struct job_input *inputs;          /* sorted by path, paths unique */
	size_t n_inputs;
};

/* Free everything JOB owns and zero it. Safe on a zeroed job. */
void job_release(struct job *job);

/* Sort env by name and inputs by path. Returns -EINVAL when two entries share a name/path. */
int job_normalise(struct job *job) __attribute__((warn_unused_result));

/* Compute the v1 key of JOB (which must be normalised) into KEY. When DUMP is not NULL, every
 * hashed field is also written to it, one per line, for `cachepot --explain --dump`.
 * Returns 0 or -ENOMEM. */
int job_key(const struct job *job, unsigned char key[DIGEST_SIZE], FILE *dump)
	__attribute__((warn_unused_result));

/* The job as wire JSON; a new reference, NULL on allocation failure. */
json_t *job_to_json(const struct job *job);

/* Parse and validate wire JSON into JOB (zeroed first). Rejects: a version other than 1, a kind
 * other than "c", a toolchain that is not 64 hex digits, argv[0] other than ROOT_RUSTC (for a C
 * job: ROOT_C_DRIVER or ROOT_CXX_DRIVER, and no link part), arguments starting with '@'
 * (the daemon must never read a file named by a client), input paths that are not canonical
 * (absolute, under /cachepot/, no empty, "." or ".." components, not under /cachepot/out),
 * modes other than 0644/0755, duplicates, and anything beyond the JOB_*_MAX bounds.
 * Returns 0, or -EINVAL with a message in ERR; -ENOMEM. JOB is released on error. */
int job_from_json(const json_t *json, struct job *job, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Is PATH a canonical input path (see job_from_json)? */
int job_path_valid(const char *path);

/* The names (relative to --out-dir) of the outputs rustc writes for JOB, from its argv: for
 * link, lib<crate><extra>.rlib (lib, rlib), lib<crate><extra>.so (proc-macro, dylib, cdylib),
 * <crate><extra> (bin); lib<crate><extra>.rmeta for metadata, <crate><extra>.d for dep-info.
 * For a C job, the one object: NAME of its single "-o ROOT_OUT/NAME" (NAME one component, not
 * a ".d", which a client would read as dep-info). *NAMES is a malloc'd array of malloc'd
 * strings; free with job_names_free.
 * Returns 0, -EINVAL when argv does not say (no --crate-name; no or another -o), -ENOMEM. */
int job_expected_outputs(const struct job *job, char ***names, size_t *n)
	__attribute__((warn_unused_result));
void job_names_free(char **names, size_t n);

#endif
