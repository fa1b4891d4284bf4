/* What the program after `cachepot` is, and running it unchanged when it is not a rustc.
 *
 * Cargo calls `cachepot /path/to/rustc ARGS...`; the cc crate, seeing a RUSTC_WRAPPER named
 * cachepot, calls `cachepot cc -c foo.c ...` (or c++, clang, /usr/bin/gcc, ...). Only a rustc
 * goes on to wrapper_main; anything else is exec'd as the shell would run it, adding no work.
 */
#ifndef CACHEPOT_CLIENT_COMPILER_H
#define CACHEPOT_CLIENT_COMPILER_H

#include <stddef.h>

enum compiler_kind {
	COMPILER_RUSTC,  /* a rustc, a rustup proxy for one, or what cargo calls as one */
	COMPILER_C,      /* a C or C++ compiler driver (gcc, g++, cc, c++, clang, clang++) */
	COMPILER_OTHER,  /* anything else */
};

/* Find NAME as execvp(3) and the shell do: a NAME with a '/' is the path itself; otherwise the
 * first regular, executable NAME in $PATH (unset: /bin:/usr/bin; an empty entry is the current
 * directory), skipping files that are not executable. Writes the path to PATH (SIZE bytes).
 * Returns 0, -ENOENT when it is nowhere, -EACCES when only non-executable ones exist,
 * -ENAMETOOLONG. */
int compiler_find(const char *name, char *path, size_t size) __attribute__((warn_unused_result));

/* What the program NAME, found at PATH, is, called with the ARGC arguments ARGV (after NAME).
 * Reads the symlink chain of PATH and nothing else; runs nothing. */
enum compiler_kind compiler_identify(const char *name, const char *path, int argc, char *const *argv);

/* Replace this process by the program at PATH with ARGV exactly (ARGV[0] as the caller gave
 * it) and the environment unchanged; a file the kernel cannot exec is run by /bin/sh, as
 * execvp(3) does. Returns only on failure, after one message on stderr, with the shell's exit
 * status: 127 when the file does not exist, 126 when it cannot be run. */
int compiler_exec(const char *path, char **argv);

/* Print the shell's message for a compiler_find failure RET on NAME and return its exit status
 * (127 not found, 126 not executable). */
int compiler_not_found(const char *name, int ret);

#endif
