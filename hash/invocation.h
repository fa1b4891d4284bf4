/* From a local rustc invocation to a job: the client's half of the key.
 *
 * invocation_build parses the command line, finds the canonical roots (the cargo target dir,
 * Debian's crate registry, CARGO_HOME, a build script's OUT_DIR, the working directory, the
 * sysroot), runs the dep-info pass (`--emit=dep-info -Z binary-dep-depinfo` with
 * RUSTC_BOOTSTRAP=1 for that pass only) to learn every file rustc reads, hashes them and builds
 * the job and its key. Files under the sysroot are covered by the toolchain id and are not inputs.
 */
#ifndef CACHEPOT_HASH_INVOCATION_H
#define CACHEPOT_HASH_INVOCATION_H

#include <stdint.h>

#include "hash/args.h"
#include "hash/job.h"
#include "hash/pathmap.h"
#include "hash/toolchain.h"

/* Canonical roots. */
#define ROOT_CWD "/cachepot/cwd"
#define ROOT_TARGET "/cachepot/target"
#define ROOT_REGISTRY "/cachepot/registry"
#define ROOT_CARGO_HOME "/cachepot/cargo-home"
#define ROOT_OUT_DIR "/cachepot/out-dir"
#define ROOT_SYSROOT "/rust"
/* Where Debian's librust-*-dev packages put crate sources. */
#define DEBIAN_REGISTRY "/usr/share/cargo/registry"

struct invocation_options {
	const char *cache_dir;   /* for the toolchain cache */
	char *const *envp;       /* the environment rustc would get */
	const char *registry;    /* DEBIAN_REGISTRY unless set (tests) */
};

struct invocation {
	struct rustc_args args;
	enum rustc_reason reason;     /* RUSTC_CACHEABLE or why not */
	char reason_detail[256];
	char *rustc;                  /* the real rustc binary (a rustup proxy resolved) */
	char *cwd;                    /* local working directory */
	char *out_dir;                /* local --out-dir, absolute */
	struct toolchain toolchain;
	struct path_map map;          /* local -> canonical, for inputs, argv and env */
	struct path_map rewrite;      /* the same plus --out-dir, for mapping outputs back */
	struct job job;
	char **input_local;           /* local path of each job input, parallel to job.inputs */
	unsigned char key[DIGEST_SIZE];
	/* Where the time went, in microseconds. */
	uint64_t us_toolchain, us_dep_info, us_hash;
};

/* Build INV for `RUSTC ARGV[0..ARGC)` run in the current directory. Returns 0 whether or not
 * the invocation is cacheable (see INV->reason), -errno on an internal error (allocation, no
 * cwd). Call invocation_release either way. */
int invocation_build(struct invocation *inv, const char *rustc, int argc, char *const *argv,
		     const struct invocation_options *options) __attribute__((warn_unused_result));

void invocation_release(struct invocation *inv);

/* Resolve a rustup proxy to the real rustc of its active toolchain (`rustc --print sysroot`).
 * *OUT is malloc'd. Returns 0 or -errno. */
int rustc_resolve(const char *rustc, char **out) __attribute__((warn_unused_result));

#endif
