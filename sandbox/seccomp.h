/* The sandbox's seccomp filter (libseccomp), internal to sandbox/.
 *
 * Default allow; EPERM for the syscalls that reach kernel attack surface or the host and that
 * a compiler never needs: ptrace and process_vm_*, the mount family, bpf, perf_event_open, the
 * key ring, userfaultfd, kexec, module loading, new namespaces (unshare, setns, clone with a
 * CLONE_NEW* flag), open_by_handle_at, io_uring, personality but its query form, and a few
 * admin calls; EAFNOSUPPORT for socket and socketpair of any family but AF_UNIX (no AF_INET,
 * AF_INET6, AF_NETLINK, AF_VSOCK, AF_PACKET...). clone3 gets ENOSYS so
 * that libc falls back to clone, whose flags the filter can inspect. Syscalls of other ABIs
 * (i386, x32) kill the process.
 */
#ifndef CACHEPOT_SANDBOX_SECCOMP_H
#define CACHEPOT_SANDBOX_SECCOMP_H

/* Build the filter as a classic BPF program (what bwrap --seccomp FD reads) in a new memfd,
 * positioned at offset 0, opened O_CLOEXEC. Returns the fd (the caller closes it) or -errno. */
int sandbox_seccomp_memfd(void) __attribute__((warn_unused_result));

/* The same filter as a docker seccomp profile (the JSON of `docker run --security-opt
 * seccomp=FILE`), made from the same tables: default allow, the same EPERM list, clone3 ENOSYS,
 * clone with a CLONE_NEW* flag EPERM, socket and socketpair of any family but AF_UNIX
 * EAFNOSUPPORT, personality but its query EPERM; only the x86-64 ABI listed (runc then denies
 * the others rather than killing). Returns a new string (the caller frees it) or NULL. */
char *sandbox_seccomp_docker_profile(void);

#endif
