/* The toolchain: the files a sandboxed rustc can see, and the id that names them.
 *
 * A toolchain tree (what the daemon keeps in toolchains/<id>/ and mounts into every sandbox):
 *   rust/bin/rustc                       the rustc binary
 *   rust/lib/<file>                      the sysroot's shared libraries (librustc_driver, LLVM, std)
 *   rust/lib/rustlib/<target>/lib/<file> the sysroot's crates (rlib, rmeta, so)
 *   usr/lib/x86_64-linux-gnu/<soname>    the ldd closure of the above (libc, libm, libgcc_s, ...)
 *   usr/lib64/ld-linux-x86-64.so.2       the dynamic loader
 * Only regular files and the directories that lead to them, modes normalised to 0644/0755;
 * since the id names files only, a directory with no file beneath it is not a toolchain tree.
 * The sandbox mounts rust/ at /rust and usr/ at /usr, with /lib and /lib64 as symlinks into it.
 *
 * The id is SHA-256 over "cachepot-toolchain-v1\0" then, for each regular file in byte order of
 * its relative path, the fields 'p' path, 'm' mode (u32 LE), 'h' sha256, each written as tag,
 * u64 LE length, bytes. The client computes it from the host files it would archive, the daemon
 * from the tree it unpacked; both agree by construction.
 */
#ifndef CACHEPOT_HASH_TOOLCHAIN_H
#define CACHEPOT_HASH_TOOLCHAIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hash/digest.h"

#define TOOLCHAIN_ID_TAG "cachepot-toolchain-v1"
/* Bounds for a tree (and an uploaded archive). */
#define TOOLCHAIN_FILES_MAX 20000
#define TOOLCHAIN_BYTES_MAX (8ull << 30)

struct toolchain_file {
	char *host_path;                  /* where the client reads it; NULL in a daemon's tree */
	char *rel;                        /* path in the tree, e.g. "rust/bin/rustc" */
	unsigned mode;                    /* 0644 or 0755 */
	uint64_t size;
	unsigned char sha256[DIGEST_SIZE];
	int64_t mtime_ns;                 /* of host_path when hashed, for the cache's validity */
	uint64_t ino;
};

struct toolchain {
	char id[DIGEST_HEX_SIZE];
	char *rustc;                      /* realpath of the rustc binary */
	char *sysroot;                    /* realpath of its sysroot */
	struct toolchain_file *files;     /* sorted by rel */
	size_t n_files;
};

void toolchain_release(struct toolchain *tc);

/* Collect the toolchain of the rustc binary RUSTC (a real rustc, not a rustup proxy: its
 * sysroot is two levels up from the binary and holds lib/rustlib) and compute its id.
 * Runs ldd. Returns 0, -ENOENT when RUSTC is not in a sysroot, -errno otherwise. */
int toolchain_collect(const char *rustc, struct toolchain *tc) __attribute__((warn_unused_result));

/* Like toolchain_collect, but answered from a cache file under CACHE_DIR keyed by the rustc
 * binary's path, and valid while every file of the tree keeps its size, mtime and inode (one
 * stat per file, well under a millisecond for a rustup toolchain); collected again otherwise. CACHE_DIR is created
 * (mode 0700) when missing; when it cannot be written the result is still returned. A NULL
 * CACHE_DIR: always collected, nothing remembered. The cache file is never read through a
 * symlink, but CACHE_DIR itself is trusted: the caller checks who can write it. */
int toolchain_get(const char *rustc, const char *cache_dir, struct toolchain *tc)
	__attribute__((warn_unused_result));

/* TC's files as a JSON array of {host, rel, mode, size, sha256, mtime_ns, ino} (the toolchain
 * cache's format, and how the wrapper hands a toolchain to cachepot-submit); a new reference,
 * NULL on allocation failure. */
json_t *toolchain_files_to_json(const struct toolchain *tc);

/* Fill TC->files and TC->n_files from such an array (TC's other fields are left alone).
 * Returns 0, -EINVAL for a malformed entry or more than TOOLCHAIN_FILES_MAX, -ENOMEM; on error
 * what was filled is released by toolchain_release. */
int toolchain_files_from_json(const json_t *files, struct toolchain *tc) __attribute__((warn_unused_result));

/* Compute the id of the tree at directory DIRFD (not closed). Fails with -EINVAL on a symlink,
 * device, fifo or socket, on a directory with no regular file beneath it (and a tree with no file
 * at all), or past TOOLCHAIN_FILES_MAX / TOOLCHAIN_BYTES_MAX. */
int toolchain_id_of_tree(int dirfd, char hex[DIGEST_HEX_SIZE]) __attribute__((warn_unused_result));

/* Write TC as an uncompressed tar stream (libarchive, pax) to FD: directories, then files with
 * their tree paths, uid/gid 0, mtime 0. Returns 0 or -errno (-EIO when a file changed size). */
int toolchain_write_archive(const struct toolchain *tc, int fd) __attribute__((warn_unused_result));

/* --- the link part -------------------------------------------------------------------------
 *
 * What a job that links (proc-macro, bin, dylib, cdylib) adds to the base tree, as a tree of
 * its own with an id of its own (the same recipe), carried in the key of link jobs only:
 *   usr/bin/cc                              the C compiler driver rustc runs as its linker
 *   usr/lib/gcc/<triple>/<v>/...            collect2, lto-wrapper, the LTO plugin, crt objects,
 *                                           libgcc (each where the driver finds it)
 *   usr/lib/<triple>/...                    libc's start files, libraries and linker scripts
 *                                           (what their GROUP/INPUT/AS_NEEDED name, followed)
 *   rust/lib/rustlib/<host>/bin/rust-lld    rustc's self-contained linker, and gcc-ld/ld.lld
 *                                           which the driver finds through rustc's -B
 *   usr/...                                 the shared-library closure of every program above
 * The daemon merges it with the base tree; a link job runs with PATH=ROOT_LINK_PATH, so rustc
 * finds the driver at /usr/bin/cc. For a link part, tc->rustc holds the driver's real path
 * and tc->sysroot the base's sysroot. */

/* Collect the link part for BASE (its rustc and sysroot) and the driver DRIVER (the linker
 * rustc would run, resolved as rustc resolves it). Runs the driver and `rustc -vV`.
 * Returns 0, -EXDEV when a file the link needs lies outside /usr, -ENOENT when the driver has
 * no collect2 or a linker script names a file that is not there, -errno otherwise. */
int toolchain_link_collect(const struct toolchain *base, const char *driver, struct toolchain *link)
	__attribute__((warn_unused_result));

/* Like toolchain_link_collect, answered from the cache under CACHE_DIR as toolchain_get is
 * (keyed by BASE's id and the driver's real path, valid while every file keeps its size,
 * mtime and inode). */
int toolchain_link_get(const struct toolchain *base, const char *driver, const char *cache_dir,
		       struct toolchain *link) __attribute__((warn_unused_result));

/* --- the C part ---------------------------------------------------------------------------
 *
 * What the sandbox needs to compile one preprocessed C or C++ unit to an object (the client
 * preprocesses, hash/c_invocation.h), as a tree of its own with an id of its own (the same
 * recipe), the only tree a C job sees (no rust/):
 *   usr/bin/cc or usr/bin/c++               the driver, under the name of the mode it runs in
 *                                           (clang picks C or C++ by its name; gcc and g++ are
 *                                           programs of their own, and keep theirs)
 *   usr/lib/gcc/<triple>/<v>/cc1[plus]      the compiler proper for the unit's language, where
 *                                           the driver finds it (clang is its own: none)
 *   usr/bin/as                              the assembler the driver runs, found along the
 *                                           PATH of a C job (ROOT_LINK_PATH) when the driver
 *                                           names it without a directory
 *   usr/...                                 the shared-library closure of each
 * Neither the linker nor collect2: a job compiles with -c. Found as the link part is, by
 * asking the driver (-print-prog-name), with the same fixed environment. For a C part,
 * tc->rustc holds the driver's real path and tc->sysroot is "". */
#define TOOLCHAIN_C_DRIVER "usr/bin/cc"
#define TOOLCHAIN_CXX_DRIVER "usr/bin/c++"

/* Collect the C part for the driver DRIVER (a path), placed at DRIVER_REL (TOOLCHAIN_C_DRIVER
 * or TOOLCHAIN_CXX_DRIVER), for units of the language whose compiler proper is COMPILER ("cc1"
 * or "cc1plus"). Runs the driver. Returns 0, -EXDEV when a file lies outside /usr, -ENOENT when
 * a gcc driver has no COMPILER or no assembler is found, -errno otherwise. */
int toolchain_c_collect(const char *driver, const char *driver_rel, const char *compiler, struct toolchain *c)
	__attribute__((warn_unused_result));

/* Like toolchain_c_collect, answered from the cache under CACHE_DIR as toolchain_get is (keyed
 * by DRIVER_REL, COMPILER and the driver's real path, valid while every file keeps its size,
 * mtime and inode). */
int toolchain_c_get(const char *driver, const char *driver_rel, const char *compiler, const char *cache_dir,
		    struct toolchain *c) __attribute__((warn_unused_result));

/* --- building a tree (hash/ only: the base tree above, the link and C parts, link_tree.c) --- */

/* Files being gathered; zero-initialise, then add, then finish or release. */
struct toolchain_builder {
	struct toolchain_file *files;
	size_t n, cap;
	uint64_t bytes;
};

/* Add the host file HOST (followed through symlinks; a regular file) as tree path REL, hashed.
 * A REL already there is left as it is. Returns 0, -E2BIG past TOOLCHAIN_FILES_MAX, -errno. */
int toolchain_builder_add(struct toolchain_builder *b, const char *host, const char *rel)
	__attribute__((warn_unused_result));

/* Run `ldd FILE` and add every library it resolves outside SYSROOT (NULL: none is left out)
 * under usr/ (the loader at usr/lib64/). Returns 0 or -errno (-ENOEXEC when ldd fails). */
int toolchain_builder_add_closure(struct toolchain_builder *b, const char *file, const char *sysroot)
	__attribute__((warn_unused_result));

/* Sort B's files, compute their id into TC->id and move them into TC->files (B is left empty).
 * Returns 0, -EFBIG past TOOLCHAIN_BYTES_MAX, -ENOMEM. */
int toolchain_builder_finish(struct toolchain_builder *b, struct toolchain *tc)
	__attribute__((warn_unused_result));

void toolchain_builder_release(struct toolchain_builder *b);

#endif
