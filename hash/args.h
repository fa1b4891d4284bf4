/* Parsing a rustc command line as cargo writes it, and deciding whether it can be cached.
 *
 * The parser understands every form cargo produces: `--flag value` and `--flag=value`,
 * `-C k=v` and `-Ck=v` (likewise -L, -l, -W/-A/-D/-F), `--extern name=path`, `-L kind=path`,
 * `--emit=a,b` (with `kind=path` items), `@argfile` (one argument per line, not recursive).
 * It never aborts on malformed input: problems end in rustc_args.reason with a detail string.
 */
#ifndef CACHEPOT_HASH_ARGS_H
#define CACHEPOT_HASH_ARGS_H

#include <stddef.h>

/* The most arguments an invocation (after @argfile expansion) may have. */
#define RUSTC_ARGS_MAX 65536
/* The largest @argfile read, in bytes. */
#define RUSTC_ARGFILE_MAX (4u << 20)

/* Why an invocation is not cacheable; RUSTC_CACHEABLE when it is. Names via rustc_reason_name. */
enum rustc_reason {
	RUSTC_CACHEABLE = 0,
	RUSTC_NC_INCREMENTAL,     /* -C incremental=...: state outside the job */
	RUSTC_NC_STDIN,           /* the crate root is read from standard input */
	RUSTC_NC_EMIT,            /* --emit asks for more than link, metadata, dep-info */
	RUSTC_NC_CRATE_TYPE,      /* staticlib, --test, or no --crate-type */
	RUSTC_NC_UNKNOWN_FLAG,    /* an option this parser does not know */
	RUSTC_NC_NO_INPUT,        /* no crate root: a query such as --version or --print */
	RUSTC_NC_MULTIPLE_INPUTS, /* more than one positional argument */
	RUSTC_NC_QUERY,           /* --print, --version, --help, --explain, -vV */
	RUSTC_NC_OUTPUT_FILE,     /* -o or --emit kind=path: outputs named outside --out-dir */
	RUSTC_NC_NO_OUT_DIR,      /* no --out-dir: outputs land in the working directory */
	RUSTC_NC_UNSUPPORTED,     /* a known option v1 does not cache (native libs, profiles...) */
	RUSTC_NC_MALFORMED,       /* a missing value, a bad @argfile, too many arguments */
	RUSTC_NC_PATH_OUTSIDE,    /* an input outside every canonical root */
	RUSTC_NC_DEP_INFO,        /* the dep-info pass failed */
	RUSTC_NC_LINK,            /* a unit that links, asking for what the link tree cannot give:
				     another linker, link args naming host paths, +crt-static,
				     LIBRARY_PATH-style variables, a native library outside the
				     mapped roots, a linker that cannot be collected */
	RUSTC_NC_LINK_FAILED,     /* a link that failed in the sandbox before, remembered */
	RUSTC_REASON_COUNT
};

/* A short stable name for REASON ("incremental", "crate-type", ...); used in stats and JSON. */
const char *rustc_reason_name(enum rustc_reason reason);

/* Kinds of output for --emit, as bits. */
enum rustc_emit {
	RUSTC_EMIT_LINK = 1u << 0,
	RUSTC_EMIT_METADATA = 1u << 1,
	RUSTC_EMIT_DEP_INFO = 1u << 2,
	RUSTC_EMIT_OTHER = 1u << 3, /* asm, llvm-ir, llvm-bc, obj, mir */
};

/* Crate types, as bits. All but staticlib are cacheable; all but RLIB link (proc-macro, bin,
 * dylib and cdylib are link units: their jobs carry the link part of the toolchain). */
enum rustc_crate_type {
	RUSTC_CRATE_RLIB = 1u << 0,       /* lib, rlib */
	RUSTC_CRATE_PROC_MACRO = 1u << 1,
	RUSTC_CRATE_BIN = 1u << 2,
	RUSTC_CRATE_DYLIB = 1u << 3,
	RUSTC_CRATE_CDYLIB = 1u << 4,
	RUSTC_CRATE_STATICLIB = 1u << 5,
};
#define RUSTC_CRATE_LINKS (RUSTC_CRATE_PROC_MACRO | RUSTC_CRATE_BIN | RUSTC_CRATE_DYLIB | RUSTC_CRATE_CDYLIB)

/* A native library named by `-l [KIND[:MODIFIERS]=]NAME[:RENAME]` (link units only). */
struct rustc_native_lib {
	char *kind;  /* "static", "dylib", ... or NULL when not given */
	char *name;  /* NAME, without a rename */
	int verbatim; /* the +verbatim modifier: NAME is a file name */
};

struct rustc_extern {
	char *name; /* without a `priv:`/`noprelude:` prefix */
	char *path; /* NULL for `--extern name` (sysroot crate such as proc_macro) */
};

/* A parsed invocation. Every string is owned by the struct and freed by rustc_args_release.
 * Indices point into argv. */
struct rustc_args {
	char **argv;             /* arguments after the rustc path, @argfiles expanded */
	size_t argc;
	int input_index;         /* argv index of the crate root, -1 if none */
	int out_dir_index;       /* argv index of the --out-dir value (or the arg holding it) */
	char *out_dir;           /* value of --out-dir, NULL if absent */
	char *crate_name;        /* --crate-name, NULL if absent */
	char *target;            /* --target, NULL if absent */
	char *dep_dir;           /* first `-L dependency=` path, NULL if absent */
	unsigned emit;           /* enum rustc_emit bits; RUSTC_EMIT_LINK when --emit is absent */
	int has_crate_type;      /* 1 when --crate-type was given */
	unsigned crate_types;    /* enum rustc_crate_type bits */
	struct rustc_native_lib *native_libs; /* -l of a link unit, in order */
	size_t n_native_libs;
	char **native_dirs;      /* `-L native=` and `-L all=`/plain `-L` paths, as written */
	size_t n_native_dirs;
	struct rustc_extern *externs;
	size_t n_externs;
	enum rustc_reason reason;
	char reason_detail[160]; /* human-readable detail for reason ("-C incremental", ...) */
	char link_refusal[160];  /* why the link tree cannot reproduce this unit's link ("-C
				    linker", ...), "" when nothing; the reason when the unit links */
};

/* Parse ARGC arguments ARGV (not including the rustc path) into ARGS, expanding @argfiles
 * relative to the current directory. On success returns 0; ARGS->reason tells cacheability.
 * Returns -ENOMEM on allocation failure (ARGS is then released). Malformed command lines are not
 * an error: they set reason RUSTC_NC_MALFORMED. Call rustc_args_release afterwards either way. */
int rustc_args_parse(struct rustc_args *args, int argc, char *const *argv)
	__attribute__((warn_unused_result));

/* Free everything ARGS owns and reset it. */
void rustc_args_release(struct rustc_args *args);

/* Expand the contents of an @argfile (LEN bytes at DATA; newline-separated, a trailing newline
 * allowed, "\r\n" accepted) by appending each argument to *LIST (count *N). Returns 0, -ENOMEM,
 * or -E2BIG when the result would pass RUSTC_ARGS_MAX. Exposed for tests and the fuzzer. */
int rustc_argfile_split(const char *data, size_t len, char ***list, size_t *n)
	__attribute__((warn_unused_result));

#endif
