/* The sandbox roots: the absolute paths under which a job names everything, the same in the
 * client's canonical paths (hash/), the tree the daemon materialises (daemon/) and the mounts
 * the sandbox makes (sandbox/).
 *
 * These strings are part of the key: they appear in a job's argv, env, cwd and input paths,
 * all of which job_key hashes, so changing one changes every key (tests/hash/test_job pins a
 * golden vector). Each is defined once, here; nothing else spells them.
 *
 *   ROOT_INPUTS      /cachepot            the input tree, bound read-only; every input path and
 *                                         the job's cwd lie under it (or are it)
 *   ROOT_CWD         /cachepot/cwd        the local working directory, unless it lies under
 *                                         another root (a crate in the registry)
 *   ROOT_TARGET      /cachepot/target     cargo's target directory
 *   ROOT_REGISTRY    /cachepot/registry   Debian's crate registry (/usr/share/cargo/registry)
 *   ROOT_CARGO_HOME  /cachepot/cargo-home CARGO_HOME (else $HOME/.cargo)
 *   ROOT_OUT_DIR     /cachepot/out-dir    a build script's OUT_DIR, when under no other root
 *   ROOT_OUT         /cachepot/out        rustc's --out-dir: the writable output tmpfs; never
 *                                         an input (job_path_valid refuses paths under it)
 *   ROOT_SYSROOT     /rust                the toolchain tree's rust/ (rustc's sysroot), bound
 *                                         read-only; covered by the toolchain id, never an input
 *   ROOT_RUSTC       /rust/bin/rustc      argv[0] of every job
 *   ROOT_LINK_PATH   /usr/bin             PATH of a job that links (rustc runs cc from it: the
 *                                         link part's usr/bin/cc) and of a C job (the driver
 *                                         runs as from it); in the job's env, so keyed
 *   ROOT_C_DRIVER    /usr/bin/cc          argv[0] of a C job whose driver runs as a C driver,
 *   ROOT_CXX_DRIVER  /usr/bin/c++         and of one whose driver runs as a C++ driver (the C
 *                                         part's usr/bin/cc or usr/bin/c++)
 *   ROOT_C_UNIT      /cachepot/unit       where a C job's preprocessed unit lies
 */
#ifndef CACHEPOT_BASE_ROOTS_H
#define CACHEPOT_BASE_ROOTS_H

#define ROOT_INPUTS "/cachepot"
#define ROOT_CWD ROOT_INPUTS "/cwd"
#define ROOT_TARGET ROOT_INPUTS "/target"
#define ROOT_REGISTRY ROOT_INPUTS "/registry"
#define ROOT_CARGO_HOME ROOT_INPUTS "/cargo-home"
#define ROOT_OUT_DIR ROOT_INPUTS "/out-dir"
#define ROOT_OUT ROOT_INPUTS "/out"
#define ROOT_SYSROOT "/rust"
#define ROOT_RUSTC ROOT_SYSROOT "/bin/rustc"
#define ROOT_LINK_PATH "/usr/bin"
#define ROOT_C_DRIVER "/usr/bin/cc"
#define ROOT_CXX_DRIVER "/usr/bin/c++"
#define ROOT_C_UNIT ROOT_INPUTS "/unit"

#endif
