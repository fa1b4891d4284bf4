/* The docker backend of the sandbox (spec->backend == SANDBOX_BACKEND_DOCKER); sandbox_run is
 * its entry point, sandbox_docker_check the start-up check, both in sandbox.h.
 *
 * What differs from bubblewrap (sandbox.h), and only this: the run is a fresh container that
 * dockerd makes from an image of the toolchain tree (imported once per toolchain, tagged
 * cachepot-toolchain:<spec->toolchain_id>; nothing pulled) and removes after it, with its
 * volumes; the network is none (no loopback interface up); dockerd's own /etc/hosts,
 * /etc/resolv.conf and /etc/hostname, and a read-only /sys with docker's masked paths, are in
 * the root; the environment is spec->envp plus HOSTNAME (and PATH when envp has none), which
 * dockerd always adds; stdout and stderr pass through dockerd's json-file log (bounded), which
 * turns bytes that are not UTF-8 into U+FFFD; user_us and sys_us are not reported. The rest,
 * the trees at the same paths, the uid, the output tmpfs, the limits and the seccomp filter,
 * is the same. sandbox/docker.c says how a run goes.
 */
#ifndef CACHEPOT_SANDBOX_DOCKER_H
#define CACHEPOT_SANDBOX_DOCKER_H

#include "sandbox/sandbox.h"

#endif
