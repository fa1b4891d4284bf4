/* What the sandbox's backends share (sandbox.c defines it; docker.c and kvm.c use it). Internal to
 * sandbox/: nothing outside includes this. */
#ifndef CACHEPOT_SANDBOX_INTERNAL_H
#define CACHEPOT_SANDBOX_INTERNAL_H

#include <stdint.h>

#include "sandbox/sandbox.h"

/* What a result holds between sandbox_run and sandbox_result_release. */
struct sandbox_hold {
	int uid_lease; /* the bound socket that leases result->uid, or -1 */
	int output_fd; /* O_RDONLY|O_DIRECTORY of the output tmpfs's root, or -1 */
};

/* Close what HOLD holds and free it; NULL is fine. */
void sandbox_hold_free(struct sandbox_hold *hold);

/* OUT = IN with every 0 field replaced by its default. */
void sandbox_fill_limits(const struct sandbox_limits *in, struct sandbox_limits *out);

/* 0 when SPEC is well-formed (paths absolute and clean, counts bounded), else -EINVAL/-E2BIG. */
int sandbox_spec_check(const struct sandbox_spec *spec) __attribute__((warn_unused_result));

/* Lease a run's uid (sandbox.c says how), trying from SEED on: the lease's socket (close it
 * to end the lease) with *UID set, or -errno (-EAGAIN: all leased). */
int sandbox_uid_lease(uint64_t seed, unsigned *uid) __attribute__((warn_unused_result));

/* Mount the output tmpfs of LIM->output_bytes on spec->output_host_dir, 0700 and owned by
 * UID:GID, after making sure its mount point exists in the input tree, and open its root into
 * HOLD->output_fd: the outputs are collected through that fd, whatever the path shows by then.
 * *MOUNTED is set once it is mounted (the caller unmounts it on failure). 0 or -errno. */
int sandbox_mount_output(const struct sandbox_spec *spec, const struct sandbox_limits *lim,
			 unsigned uid, unsigned gid, struct sandbox_hold *hold, int *mounted)
    __attribute__((warn_unused_result));

/* The longest tag sandbox_toolchain_tag makes, without its NUL. */
#define SANDBOX_TAG_MAX 128

/* The name the docker and kvm backends give what they derive from SPEC's toolchain tree (an
 * image, a file system image), into TAG (SANDBOX_TAG_MAX + 1 bytes): the toolchain id when it is
 * one ([0-9a-z_.-], not starting with '.' or '-'), else "tree-" and the tree's device, inode and
 * ctime, so a tree made again is never mistaken for the one before. 0 or -errno of its stat. */
int sandbox_toolchain_tag(const struct sandbox_spec *spec, char tag[SANDBOX_TAG_MAX + 1])
    __attribute__((warn_unused_result));

/* The docker backend's sandbox_run (docker.c), SPEC already checked. */
int sandbox_docker_run(const struct sandbox_spec *spec, struct sandbox_result *result)
    __attribute__((warn_unused_result));

/* The kvm backend's sandbox_run (kvm.c), SPEC already checked. */
int sandbox_kvm_run(const struct sandbox_spec *spec, struct sandbox_result *result)
    __attribute__((warn_unused_result));

#endif
