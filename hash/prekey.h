/* Direct mode's shared recipe: the pre-key of a job and the input list recorded under it.
 *
 * Direct mode skips rustc's dep-info pass. The PRE-KEY hashes what decides which files rustc
 * reads, except their contents: the toolchain (and link part), the normalised arguments (which
 * name the crate root and every --extern by canonical path), the working directory and the
 * environment every job of the invocation carries whatever its sources read (OUT_DIR, the
 * CARGO_* variables the key keeps, PATH in a job that links). Its recipe:
 *
 *   prekey = SHA-256("cachepot-direct-v1\0" || job_key(that job with no inputs and no env-deps))
 *
 * The client computes it before the dep-info pass; the daemon computes it again from the job it
 * verified, dropping the variables prekey_env_is_base does not keep (those are the job's
 * env-deps). Both call job_prekey, so the two agree by construction.
 *
 * A LIST is what a full pass found a job of that pre-key reading, as JSON:
 *
 *   {"inputs":["/cachepot/...",...], "env_deps":["NAME",...], "env_unset":["NAME",...]}
 *
 * inputs are the job's canonical input paths (sorted), env_deps the names of its variables
 * beyond the pre-key's (set when read), env_unset the names rustc read while they were unset
 * (option_env!). The client's local lists (<cache dir>/direct/<prekey>.json) and the daemon's
 * published ones (fs/prekey_list.h) hold the same object, made by prekey_list_make.
 *
 * A list only ever leads the client to a key it computes itself over the files the list names,
 * hashed as they are now, which is then looked up as usual: a wrong or stale list can make that
 * lookup miss, and a hit is the result of a job whose sandbox saw exactly those files.
 */
#ifndef CACHEPOT_HASH_PREKEY_H
#define CACHEPOT_HASH_PREKEY_H

#include <stddef.h>

#include <jansson.h>

#include "hash/digest.h"
#include "hash/job.h"

#define PREKEY_TAG "cachepot-direct-v1"

/* The environment a job keeps, shared here by the client's invocation (hash/invocation.c) and
 * the daemon's pre-key.
 *
 * Whether the variable NAME (LEN bytes) may hold a credential: registry settings and tokens
 * (CARGO_REGISTRY_TOKEN, CARGO_REGISTRIES_<name>_TOKEN, credential providers), cargo's HTTP
 * settings (CARGO_HTTP_PROXY may carry user:password), any proxy URL (*_PROXY, any case), and
 * any name that says it holds a token, password, secret, credential or private key. Such a
 * value never enters a job: it would be in the key, sent to the daemon and set in the sandbox,
 * and `cachepot --explain` would print it. */
int env_is_credential(const char *name, size_t len);

/* Which CARGO_* variables go into the key: all that env!() can read, minus those that carry
 * scheduling or credentials rather than meaning (CARGO_MAKEFLAGS, CARGO_BUILD_JOBS,
 * CARGO_ENCODED_RUSTFLAGS, credentials). */
int env_cargo_kept(const char *name);

/* Whether the variable NAME of JOB is one the pre-key covers: OUT_DIR, a CARGO_* variable
 * env_cargo_kept keeps, PATH in a job that links. Any other variable of a job is an env-dep. */
int prekey_env_is_base(const struct job *job, const char *name);

/* The pre-key of JOB (normalised; its inputs and env-deps are ignored) into PREKEY.
 * 0 or -ENOMEM. */
int job_prekey(const struct job *job, unsigned char prekey[DIGEST_SIZE])
	__attribute__((warn_unused_result));

/* The list of JOB (normalised) with the names UNSET (N_UNSET of them) read while unset: a new
 * reference, NULL on allocation failure. */
json_t *prekey_list_make(const struct job *job, char *const *unset, size_t n_unset);

/* Whether LIST has the shape above within the bounds (JOB_INPUTS_MAX inputs, JOB_ENV_MAX names
 * of each kind), every input a canonical path
 * (job_path_valid) and every name a non-empty string without '='. */
int prekey_list_valid(const json_t *list);

#endif
