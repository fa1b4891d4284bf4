/* Parsing a C or C++ compiler command line (gcc and clang drivers, as the cc crate and build
 * systems write them) and deciding whether it can be cached.
 *
 * What is cached is one compile of one C or C++ source to one object: `-c SOURCE -o OBJECT`,
 * with any of the options the cc crate passes (-O, -g, -f..., -m..., -W..., -std=, -I, -D, -U,
 * -include, -isystem, depfiles with -MD/-MMD/-MF/-MT/-MQ/-MP). The compile is done in two
 * halves (hash/c_invocation.h): the preprocessor runs on the client with every option, and
 * the sandbox compiles the preprocessed unit with the options of the compile proper. So every
 * argument gets a role saying which half it belongs to.
 *
 * The parser knows options by name and refuses what it does not know: an option it has not
 * seen may read or write files, or name the host's CPU, and caching it would be a guess.
 * It never aborts on malformed input: problems end in c_args.reason with a detail string.
 */
#ifndef CACHEPOT_HASH_C_ARGS_H
#define CACHEPOT_HASH_C_ARGS_H

#include <stddef.h>

/* The most arguments a command line may have. */
#define C_ARGS_MAX 65536

/* Why a C or C++ command line is not cacheable; C_CACHEABLE when it is. Names (stable, used
 * in the statistics and --explain) via c_reason_name. */
enum c_reason {
	C_CACHEABLE = 0,
	C_NC_PREPROCESS_ONLY,   /* -E, -M, -MM: no object is made */
	C_NC_NOT_COMPILE,       /* no -c (a link, a query such as --version) or -S */
	C_NC_MULTIPLE_SOURCES,  /* more than one source */
	C_NC_NO_SOURCE,         /* no source at all */
	C_NC_STDIN,             /* the source is standard input */
	C_NC_NATIVE,            /* -march=native and friends: the answer is the host's CPU */
	C_NC_UNKNOWN_FLAG,      /* an option this parser does not know */
	C_NC_UNSUPPORTED,       /* a known option not cached: extra outputs (-save-temps,
				   -gsplit-dwarf, coverage), host files (-B, -specs=, plugins,
				   @file), paths in the compile's options, prefix maps, -g3 */
	C_NC_LANGUAGE,          /* a source that is neither C nor C++ (assembly, a .i, ...) */
	C_NC_NO_OUTPUT,         /* no -o: the object would be named after the source */
	C_NC_MALFORMED,         /* a missing value, too many arguments */
	C_NC_ENVIRONMENT,       /* GCC_EXEC_PREFIX or COMPILER_PATH move the compiler's programs */
	C_NC_TOOLCHAIN,         /* the compiler cannot be collected */
	C_NC_PREPROCESSOR,      /* the local preprocessor failed (the compile shows why) */
	C_REASON_COUNT
};

/* A short stable name for REASON ("preprocess-only", "native-cpu", ...). */
const char *c_reason_name(enum c_reason reason);

enum c_language {
	C_LANG_NONE = 0,
	C_LANG_C,
	C_LANG_CXX,
};

/* Which half of the compile an argument belongs to. */
enum c_arg_role {
	C_ROLE_BOTH,        /* the preprocessor's and the compile's (-O2, -g, -fPIC, -std=c11) */
	C_ROLE_PREPROCESS,  /* the preprocessor's only (-I, -D, -include, depfile options) */
	C_ROLE_DRIVER,      /* set by whoever runs a half: -c, -o and its value, -x and its
			       value, the source */
};

/* A parsed command line. Every string is owned by the struct and freed by c_args_release;
 * SOURCE and OUTPUT point into ARGV (or into an argument, for -oFILE). */
struct c_args {
	char **argv;              /* the arguments after the compiler, as given */
	size_t argc;
	unsigned char *roles;     /* roles[i]: enum c_arg_role of argv[i] */
	int source_index;         /* argv index of the source, -1 if none */
	const char *source;
	const char *output;       /* the -o value, NULL if none */
	enum c_language language; /* of the source: -x, else its extension */
	int depfile;              /* -MD or -MMD: the preprocessor writes a depfile */
	int depfile_named;        /* -MF given */
	int depfile_target_named; /* -MT or -MQ given */
	enum c_reason reason;
	char reason_detail[160];
};

/* Parse ARGC arguments ARGV (not including the compiler) into ARGS. Returns 0 (ARGS->reason
 * tells cacheability) or -ENOMEM (ARGS is then released). Call c_args_release either way. */
int c_args_parse(struct c_args *args, int argc, char *const *argv) __attribute__((warn_unused_result));

/* Free everything ARGS owns and reset it. */
void c_args_release(struct c_args *args);

#endif
