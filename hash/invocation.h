/* From a local rustc invocation to a job: the client's half of the key.
 *
 * invocation_build parses the command line, finds the canonical roots (the cargo target dir,
 * Debian's crate registry, CARGO_HOME, a build script's OUT_DIR, the working directory, the
 * sysroot), runs the dep-info pass (`--emit=dep-info -Z binary-dep-depinfo` with
 * RUSTC_BOOTSTRAP=1 for that pass only) to learn every file rustc reads, hashes them and builds
 * the job and its key. Files under the sysroot are covered by the toolchain id and are not inputs.
 *
 * A unit that links (proc-macro, bin and build scripts, dylib, cdylib) is a link job: its job
 * also carries the link part of the toolchain (toolchain.h; collected for the `cc` rustc would
 * run, found along PATH as rustc finds it), PATH=ROOT_LINK_PATH, and as inputs the .rlib beside
 * every .rmeta the dep-info pass lists (the link reads the rlib) and the native libraries its
 * -l name under -L native= directories inside the mapped roots. What the link tree cannot
 * reproduce is not cacheable with reason RUSTC_NC_LINK: a client environment that sets
 * LIBRARY_PATH, COMPILER_PATH or GCC_EXEC_PREFIX, a linker that cannot be collected, a native
 * library outside the mapped roots (args.c refuses the command-line cases).
 *
 * Direct mode skips the dep-info pass, which costs a rustc front-end run per invocation. The
 * pre-key (hash/prekey.h) hashes what decides which files rustc reads, except their contents:
 * the toolchain, the normalised arguments, the working directory and the CARGO_* environment.
 * Under it the last full pass recorded its input list (canonical paths), the names of its
 * env-deps and of the variables it read while unset; the daemon publishes the same list for
 * every job it ran (options.published_lists reads them), so a machine that never built the job
 * skips the pass too. A direct build hashes the listed files as they are now and
 * takes the env-deps' current values; a variable read unset that is now set voids the list.
 * When a listed file changed so that rustc would now read a different set, the key made from
 * the old list was never published by a full pass (and a sandbox given only the old list could
 * not have compiled the new source successfully unless the set did not matter), so the lookup
 * misses and the wrapper runs the full pass. Only hits are served from direct keys.
 */
#ifndef CACHEPOT_HASH_INVOCATION_H
#define CACHEPOT_HASH_INVOCATION_H

#include <stdint.h>

#include <jansson.h>

#include "base/roots.h"
#include "hash/args.h"
#include "hash/job.h"
#include "hash/pathmap.h"
#include "hash/toolchain.h"

/* Where Debian's librust-*-dev packages put crate sources. */
#define DEBIAN_REGISTRY "/usr/share/cargo/registry"

struct invocation_options {
	const char *cache_dir;   /* for the toolchain cache, or NULL (see toolchain_get) */
	char *const *envp;       /* the environment rustc would get */
	const char *registry;    /* DEBIAN_REGISTRY unless set (tests) */
	/* Direct mode: when set, the input list of an earlier dep-info pass with the same pre-key
	 * is reused instead of running the pass again (see invocation_build), and every full pass
	 * records its list. The directory is created (0700) when missing; its files are never
	 * opened through a symlink, and the caller checks who can write it. */
	const char *direct_dir;
	int use_direct;          /* 0: always run the dep-info pass (still recording) */
	/* Published lists (direct mode for every machine): when not NULL, called with the pre-key
	 * once the local list is used up, for the lists the daemon published under it, newest
	 * first: *LISTS a new reference to a JSON array of lists (hash/prekey.h) taken from a
	 * signed object the callee verified, or NULL. 0 or -errno (taken as none). */
	int (*published_lists)(void *ctx, const char prekey_hex[DIGEST_HEX_SIZE], json_t **lists);
	void *published_ctx;
	/* The first list to consider: 0 the local one, then 1... the published ones in their order
	 * (see invocation.direct_next). */
	unsigned direct_from;
};

struct invocation {
	struct rustc_args args;
	enum rustc_reason reason;     /* RUSTC_CACHEABLE or why not */
	char reason_detail[256];
	char *rustc;                  /* the real rustc binary (a rustup proxy resolved) */
	char *cwd;                    /* local working directory */
	char *out_dir;                /* local --out-dir, absolute */
	struct toolchain toolchain;
	struct toolchain link;        /* the link part, for a unit that links (id "" otherwise) */
	char *linker;                 /* the host's `cc` rustc would run, for a unit that links */
	struct path_map map;          /* local -> canonical, for inputs, argv and env */
	struct path_map rewrite;      /* the same plus --out-dir, for mapping outputs back */
	struct job job;
	char **input_local;           /* local path of each job input, parallel to job.inputs */
	unsigned char key[DIGEST_SIZE];
	int direct;                   /* 1 when the inputs came from a recorded list, not a pass */
	int direct_published;         /* with direct: the list was a published one */
	unsigned direct_next;         /* with direct: the direct_from that tries the lists after it */
	json_t *direct_list;          /* with direct: the list used (owned) */
	unsigned char prekey[DIGEST_SIZE]; /* with a direct_dir: the pre-key (hash/prekey.h) */
	char *const *envp;            /* the environment given in the options (not owned) */
	/* Where the time went, in microseconds. */
	uint64_t us_toolchain, us_dep_info, us_hash;
};

/* Build INV for `RUSTC ARGV[0..ARGC)` run in the current directory. Returns 0 whether or not
 * the invocation is cacheable (see INV->reason), -errno on an internal error (allocation, no
 * cwd). Call invocation_release either way. */
int invocation_build(struct invocation *inv, const char *rustc, int argc, char *const *argv,
		     const struct invocation_options *options) __attribute__((warn_unused_result));

void invocation_release(struct invocation *inv);

/* Keep the published list INV used as the local list of its pre-key, for the next build on
 * this machine. Call it after a hit: a list that missed is not worth keeping. Best effort. */
void invocation_direct_keep(const struct invocation *inv, const struct invocation_options *options);

/* Add to MAP the canonical roots of a compile run in CWD (absolute, normalised) whose outputs
 * go to OUT_DIR (relative to CWD or absolute): SYSROOT (unless NULL), the cargo target dir
 * holding OUT_DIR (the nearest ancestor with cargo's CACHEDIR.TAG), REGISTRY, CARGO_HOME (else
 * $HOME/.cargo) and a build script's OUT_DIR from ENVP, and CWD itself unless it lies under one
 * of them. Returns 0 or -errno. */
int invocation_map_roots(struct path_map *map, const char *cwd, const char *out_dir, char *const *envp,
			 const char *registry, const char *sysroot) __attribute__((warn_unused_result));

/* Resolve a rustup proxy to the real rustc of its active toolchain (`rustc --print sysroot`).
 * *OUT is malloc'd. Returns 0 or -errno. */
int rustc_resolve(const char *rustc, char **out) __attribute__((warn_unused_result));

#endif
