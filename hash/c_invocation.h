/* From a local C or C++ compile to a job: the client's half of the key of a C job.
 *
 * `cc ARGS -c SOURCE -o OBJECT` is cached in two halves, as sccache does: the preprocessor runs
 * here, with every option and the caller's environment (`cc ARGS -E SOURCE -o UNIT`, writing
 * the depfile too when -MD/-MMD ask for one), and the sandbox compiles the preprocessed unit to
 * the object with the options of the compile proper (c_args.h's roles), over the C part of the
 * toolchain (hash/toolchain.h). The job's one input is the unit, so no header is needed in the
 * sandbox, and the key covers every byte the compile reads: the unit, the C part, the argv.
 *
 * Why preprocess rather than send the headers the depfile names (ccache's direct mode): the
 * headers a compile reads depend on the include path, the macros and the files present, so a
 * direct mode needs a first pass that lists them anyway, and then every header as an input
 * (hundreds of system headers for a C++ unit) hashed and uploaded, and /usr/include in the
 * sandbox. The preprocessor is that first pass and its output is the whole of what the compile
 * reads; on the cc workspace of tests/client it costs about a third of a compile (NEWS has the
 * figures).
 *
 * Path independence. The unit's line markers (`# 1 "/home/me/ws/csrc/x.h" 1`) carry the
 * absolute paths of the checkout, OUT_DIR, the registry: they decide the object's debug
 * information and the key. Each marker's path under a canonical root (invocation_map_roots) is
 * mapped to its canonical form, so a checkout at another path makes the same unit, the same key
 * and a byte-identical object; the compile's diagnostics are mapped back (the rewrite map).
 * Only markers are mapped: a path in a string (__FILE__, assert) is the program's, kept, and
 * ties that unit's key to its checkout. The depfile is written here by the preprocessor, with
 * local paths.
 */
#ifndef CACHEPOT_HASH_C_INVOCATION_H
#define CACHEPOT_HASH_C_INVOCATION_H

#include <stddef.h>
#include <stdint.h>

#include "hash/c_args.h"
#include "hash/invocation.h"

/* The largest preprocessed unit taken (a C++ unit with much of the standard library is a few
 * MB). */
#define C_UNIT_MAX (256u << 20)
/* The most preprocessor diagnostics kept for replay. */
#define C_PREPROCESSOR_STDERR_MAX (1u << 20)

struct c_invocation_options {
	const char *cache_dir;   /* for the C part's cache, or NULL */
	char *const *envp;       /* the environment the compiler would get */
	const char *registry;    /* DEBIAN_REGISTRY unless set (tests) */
};

struct c_invocation {
	/* What the wrapper serves and submits with, as for rustc: job (kind C), key, toolchain
	 * (the C part), map, rewrite, cwd, out_dir (the object's directory; the job's one output
	 * is named after the object), input_local (the unit). */
	struct invocation inv;
	struct c_args args;
	enum c_reason reason;          /* C_CACHEABLE or why not */
	char reason_detail[256];
	char *unit_dir;                /* private directory holding the unit; removed by release */
	char *preprocessor_stderr;     /* what the preprocessor said, replayed before a result */
	size_t preprocessor_stderr_len;
	uint64_t us_toolchain, us_preprocess, us_hash;
};

/* Build CI for the compiler found at DRIVER, called as NAME (argv[0] as given: clang reads its
 * mode from it), with ARGC arguments ARGV, in the current directory. Runs the preprocessor
 * when the command line is cacheable. Returns 0 whether or not it is (see CI->reason), -errno
 * on an internal error. Call c_invocation_release either way. */
int c_invocation_build(struct c_invocation *ci, const char *driver, const char *name, int argc, char *const *argv,
		       const struct c_invocation_options *options) __attribute__((warn_unused_result));

/* Free everything CI owns, remove its unit directory, and zero it. */
void c_invocation_release(struct c_invocation *ci);

/* Map the paths of the line markers in the preprocessed unit TEXT (LEN bytes) that lie under a
 * root of MAP to their canonical form. *OUT is a new NUL-terminated buffer of *OUTLEN bytes.
 * Returns 0 or -ENOMEM. Exposed for tests. */
int c_unit_map_line_markers(const struct path_map *map, const char *text, size_t len, char **out, size_t *outlen)
	__attribute__((warn_unused_result));

#endif
