/* C and C++ command-line parsing and cacheability; see c_args.h. */
#include "config.h"

#include "hash/c_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[C_REASON_COUNT] = {
	[C_CACHEABLE] = "cacheable",
	[C_NC_PREPROCESS_ONLY] = "preprocess-only",
	[C_NC_NOT_COMPILE] = "not-a-compile",
	[C_NC_MULTIPLE_SOURCES] = "multiple-sources",
	[C_NC_NO_SOURCE] = "no-source",
	[C_NC_STDIN] = "stdin-input",
	[C_NC_NATIVE] = "native-cpu",
	[C_NC_UNKNOWN_FLAG] = "unknown-flag",
	[C_NC_UNSUPPORTED] = "unsupported-option",
	[C_NC_LANGUAGE] = "language",
	[C_NC_NO_OUTPUT] = "no-output",
	[C_NC_MALFORMED] = "malformed",
	[C_NC_ENVIRONMENT] = "environment",
	[C_NC_TOOLCHAIN] = "toolchain",
	[C_NC_PREPROCESSOR] = "preprocessor-failed",
};

const char *c_reason_name(enum c_reason reason)
{
	if ((unsigned)reason >= C_REASON_COUNT)
		return "unknown";
	return reason_names[reason];
}

/* The first reason found wins, as for rustc's parser. */
__attribute__((format(printf, 3, 4)))
static void set_reason(struct c_args *args, enum c_reason reason, const char *fmt, ...)
{
	va_list ap;
	if (args->reason != C_CACHEABLE)
		return;
	args->reason = reason;
	va_start(ap, fmt);
	vsnprintf(args->reason_detail, sizeof(args->reason_detail), fmt, ap);
	va_end(ap);
}

void c_args_release(struct c_args *args)
{
	for (size_t i = 0; i < args->argc; i++)
		free(args->argv[i]);
	free(args->argv);
	free(args->roles);
	memset(args, 0, sizeof(*args));
	args->source_index = -1;
}

/* Options that take a value, as the next argument or joined to the name ("-I dir", "-Idir"),
 * all the preprocessor's. Longer names first where one is a prefix of another. */
static const char *const preprocess_valued[] = {
	"-iwithprefixbefore", "-iwithprefix", "-idirafter", "-imultilib", "-isysroot", "-isystem",
	"-imacros", "-include", "-iprefix", "-iquote", "--sysroot", "-MF", "-MT", "-MQ", "-I", "-D", "-U",
};

/* Preprocessor options without a value. Not -P, -C, -CC: they change the preprocessed unit
 * (no line markers, comments kept) in ways a compile of the source never sees. */
static const char *const preprocess_flags[] = {
	"-MD", "-MMD", "-MP", "-MG", "-nostdinc", "-nostdinc++", "-undef", "-H",
	"-remap", "-traditional-cpp", "-trigraphs",
};

/* Options of the compile proper without a value, besides the -f, -m, -W, -O, -g families. */
static const char *const compile_flags[] = {
	"-w", "-ansi", "-pedantic", "-pedantic-errors", "-pipe", "-pthread", "-Qunused-arguments",
	"-no-integrated-as", "-integrated-as",
};

/* Options of the compile that take a separate value ("--param x=1"; "--param=x=1" too). */
static const char *const compile_valued[] = { "--param", "-Xassembler", "-target", "--target" };

/* Known options that are never cached, and why: each makes an output beside the object,
 * reads a file of the host, or makes the object depend on the command line itself. */
static const struct {
	const char *prefix;
	const char *why;
} refused[] = {
	{ "-save-temps", "writes intermediate files beside the object" },
	{ "-gsplit-dwarf", "writes a .dwo beside the object" },
	{ "-fprofile", "reads or writes profile data" },
	{ "-fauto-profile", "reads profile data" },
	{ "-fbranch-probabilities", "reads profile data" },
	{ "-ftest-coverage", "writes a .gcno beside the object" },
	{ "--coverage", "writes a .gcno beside the object" },
	{ "-fstack-usage", "writes a .su beside the object" },
	{ "-fcallgraph-info", "writes a .ci beside the object" },
	{ "-fdump-", "writes dump files" },
	{ "-fsave-optimization-record", "writes an optimization record" },
	{ "-fopt-info", "writes an optimization report" },
	{ "-frecord-gcc-switches", "records the command line in the object" },
	{ "-grecord-gcc-switches", "records the command line in the object" },
	{ "-fplugin", "loads a plugin of the host" },
	{ "-specs", "reads a specs file of the host" },
	{ "-fdebug-prefix-map", "prefix maps name local paths the sandbox does not see" },
	{ "-ffile-prefix-map", "prefix maps name local paths the sandbox does not see" },
	{ "-fmacro-prefix-map", "prefix maps name local paths the sandbox does not see" },
	{ "-fdebug-compilation-dir", "names a local path" },
	{ "-fcompare-debug", "compiles twice and compares" },
	{ "-fmodules", "reads and writes a module cache" },
	{ "-fpch-preprocess", "precompiled headers" },
	{ "-fdirectives-only", "leaves macros to the compile" },
	{ "-Wp,", "passes options to the preprocessor unseen" },
	{ "-Xpreprocessor", "passes options to the preprocessor unseen" },
	{ "-Xclang", "passes options to clang's front end unseen" },
	{ "-wrapper", "runs the compiler's programs through another" },
	{ "-B", "looks for the compiler's programs elsewhere" },
	{ "-v", "prints the driver's commands" },
	{ "-###", "prints the driver's commands" },
};

static int in_list(const char *arg, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(arg, list[i]) == 0)
			return 1;
	return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Does the -g option ARG ask for macro information (-g3, -ggdb3, -gdwarf-4 -g3...)? The
 * preprocessed unit has no macros left to describe. */
static int debug_macros(const char *arg)
{
	size_t n = strlen(arg);
	return n >= 3 && arg[n - 1] == '3' && (strcmp(arg, "-g3") == 0 || strcmp(arg, "-ggdb3") == 0
					       || strcmp(arg, "-gstabs3") == 0 || strcmp(arg, "-gxcoff3") == 0);
}

/* Is ARG one of the families of the compile proper (-f..., -m..., -W..., -O..., -g..., -std=)?
 * Sets a reason and returns 1 for the members that cannot be cached. */
static int compile_family(struct c_args *args, const char *arg, int *known)
{
	*known = 1;
	for (size_t i = 0; i < COUNT(refused); i++)
		if (strncmp(arg, refused[i].prefix, strlen(refused[i].prefix)) == 0) {
			set_reason(args, C_NC_UNSUPPORTED, "%.80s %s", arg, refused[i].why);
			return 1;
		}
	if (arg[1] == 'm' && (strstr(arg, "=native") != NULL)) {
		set_reason(args, C_NC_NATIVE, "%.100s", arg);
		return 1;
	}
	if (arg[1] == 'g' && debug_macros(arg)) {
		set_reason(args, C_NC_UNSUPPORTED, "%.80s describes macros, which preprocessing removes", arg);
		return 1;
	}
	if ((arg[1] == 'f' || arg[1] == 'm' || arg[1] == 'O' || arg[1] == 'g') && arg[2] != '\0')
		return 0;
	if (strcmp(arg, "-g") == 0 || strcmp(arg, "-O") == 0)
		return 0;
	/* -W...: warnings, and -Wa,/-Wl, (the assembler's; the linker's, unused by -c). */
	if (arg[1] == 'W' && arg[2] != '\0')
		return 0;
	if (strncmp(arg, "-std=", 5) == 0 && arg[5] != '\0')
		return 0;
	*known = 0;
	return 0;
}

/* The language a source's extension says; C_LANG_NONE for what is not C or C++. */
static enum c_language language_of(const char *source)
{
	static const char *const cxx[] = { "cc", "cp", "cxx", "cpp", "CPP", "c++", "C" };
	const char *slash = strrchr(source, '/');
	const char *dot = strrchr(slash ? slash + 1 : source, '.');

	if (!dot)
		return C_LANG_NONE;
	if (strcmp(dot + 1, "c") == 0)
		return C_LANG_C;
	for (size_t i = 0; i < COUNT(cxx); i++)
		if (strcmp(dot + 1, cxx[i]) == 0)
			return C_LANG_CXX;
	return C_LANG_NONE;
}

/* The language -x LANG names; -1 for "none" (back to extensions), C_LANG_NONE for another. */
static int language_named(const char *lang)
{
	if (strcmp(lang, "none") == 0)
		return -1;
	if (strcmp(lang, "c") == 0)
		return C_LANG_C;
	if (strcmp(lang, "c++") == 0)
		return C_LANG_CXX;
	return C_LANG_NONE;
}

/* Does the option ARG of the compile proper name a file? The sandbox has none of the
 * client's, and a local path in the compile's options would tie the key to a checkout. */
static int names_path(const char *arg)
{
	return strchr(arg, '/') != NULL;
}

/* Parse one option at argv[*i] (which starts with '-'), advancing *i past a separate value. */
static void parse_option(struct c_args *args, size_t *i, int *compile, int *x_lang)
{
	const char *a = args->argv[*i];
	size_t n = args->argc;
	int known;

	if (strcmp(a, "-c") == 0) {
		*compile = 1;
		args->roles[*i] = C_ROLE_DRIVER;
		return;
	}
	if (strcmp(a, "-E") == 0 || strcmp(a, "-M") == 0 || strcmp(a, "-MM") == 0) {
		set_reason(args, C_NC_PREPROCESS_ONLY, "%s", a);
		return;
	}
	if (strcmp(a, "-S") == 0) {
		set_reason(args, C_NC_NOT_COMPILE, "-S: assembly, not an object");
		return;
	}
	if (strncmp(a, "-o", 2) == 0) {
		args->roles[*i] = C_ROLE_DRIVER;
		if (a[2] != '\0') {
			args->output = a + 2;
		} else if (*i + 1 < n) {
			args->roles[++*i] = C_ROLE_DRIVER;
			args->output = args->argv[*i];
		} else {
			set_reason(args, C_NC_MALFORMED, "-o without a value");
		}
		return;
	}
	if (strncmp(a, "-x", 2) == 0) {
		const char *lang = a + 2;
		args->roles[*i] = C_ROLE_DRIVER;
		if (*lang == '\0') {
			if (*i + 1 >= n) {
				set_reason(args, C_NC_MALFORMED, "-x without a value");
				return;
			}
			args->roles[++*i] = C_ROLE_DRIVER;
			lang = args->argv[*i];
		}
		*x_lang = language_named(lang);
		if (*x_lang == C_LANG_NONE)
			set_reason(args, C_NC_LANGUAGE, "-x %.100s", lang);
		return;
	}
	for (size_t k = 0; k < COUNT(preprocess_valued); k++) {
		size_t len = strlen(preprocess_valued[k]);
		if (strncmp(a, preprocess_valued[k], len) != 0)
			continue;
		/* --sysroot=DIR is the joined form of --sysroot */
		if (a[len] == '=' && strcmp(preprocess_valued[k], "--sysroot") == 0)
			len++;
		else if (a[len] != '\0' && preprocess_valued[k][1] == '-')
			continue;
		args->roles[*i] = C_ROLE_PREPROCESS;
		if (a[len] == '\0' && a[len - 1] != '=') {
			if (*i + 1 >= n) {
				set_reason(args, C_NC_MALFORMED, "%s without a value", a);
				return;
			}
			args->roles[++*i] = C_ROLE_PREPROCESS;
		}
		if (strcmp(preprocess_valued[k], "-MF") == 0)
			args->depfile_named = 1;
		if (strcmp(preprocess_valued[k], "-MT") == 0 || strcmp(preprocess_valued[k], "-MQ") == 0)
			args->depfile_target_named = 1;
		return;
	}
	if (in_list(a, preprocess_flags, COUNT(preprocess_flags))) {
		args->roles[*i] = C_ROLE_PREPROCESS;
		if (strcmp(a, "-MD") == 0 || strcmp(a, "-MMD") == 0)
			args->depfile = 1;
		/* -trigraphs changes what the compile reads as well */
		if (strcmp(a, "-trigraphs") == 0)
			args->roles[*i] = C_ROLE_BOTH;
		return;
	}
	for (size_t k = 0; k < COUNT(compile_valued); k++) {
		size_t len = strlen(compile_valued[k]);
		if (strncmp(a, compile_valued[k], len) != 0 || (a[len] != '\0' && a[len] != '='))
			continue;
		args->roles[*i] = C_ROLE_BOTH;
		if (a[len] == '\0') {
			if (*i + 1 >= n) {
				set_reason(args, C_NC_MALFORMED, "%s without a value", a);
				return;
			}
			args->roles[++*i] = C_ROLE_BOTH;
			if (names_path(args->argv[*i]))
				set_reason(args, C_NC_UNSUPPORTED, "%s %.100s names a path", a, args->argv[*i]);
		} else if (names_path(a)) {
			set_reason(args, C_NC_UNSUPPORTED, "%.100s names a path", a);
		}
		return;
	}
	args->roles[*i] = C_ROLE_BOTH;
	if (in_list(a, compile_flags, COUNT(compile_flags)))
		return;
	if (compile_family(args, a, &known))
		return;
	if (!known) {
		set_reason(args, C_NC_UNKNOWN_FLAG, "%.100s", a);
		return;
	}
	if (names_path(a))
		set_reason(args, C_NC_UNSUPPORTED, "%.100s names a path", a);
}

int c_args_parse(struct c_args *args, int argc, char *const *argv)
{
	int compile = 0, x_lang = -1, x_at_source = -1;
	size_t n_sources = 0;

	memset(args, 0, sizeof(*args));
	args->source_index = -1;
	if (argc < 0 || (size_t)argc > C_ARGS_MAX) {
		set_reason(args, C_NC_MALFORMED, "more than %d arguments", C_ARGS_MAX);
		return 0;
	}
	args->argv = calloc((size_t)argc + 1, sizeof(*args->argv));
	args->roles = calloc((size_t)argc + 1, 1);
	if (!args->argv || !args->roles)
		goto nomem;
	for (int i = 0; i < argc; i++) {
		args->argv[i] = strdup(argv[i]);
		if (!args->argv[i])
			goto nomem;
		args->argc++;
	}
	for (size_t i = 0; i < args->argc; i++) {
		const char *a = args->argv[i];
		if (a[0] == '-' && a[1] != '\0') {
			parse_option(args, &i, &compile, &x_lang);
			continue;
		}
		if (a[0] == '@') {
			set_reason(args, C_NC_UNSUPPORTED, "%.100s: an argument file", a);
			continue;
		}
		args->roles[i] = C_ROLE_DRIVER;
		if (strcmp(a, "-") == 0)
			set_reason(args, C_NC_STDIN, "the source is standard input");
		if (++n_sources == 1) {
			args->source_index = (int)i;
			args->source = a;
			x_at_source = x_lang;
		}
	}
	if (!compile)
		set_reason(args, C_NC_NOT_COMPILE, "no -c: the driver would link");
	if (n_sources == 0)
		set_reason(args, C_NC_NO_SOURCE, "no source");
	else if (n_sources > 1)
		set_reason(args, C_NC_MULTIPLE_SOURCES, "%zu sources", n_sources);
	if (!args->output)
		set_reason(args, C_NC_NO_OUTPUT, "no -o");
	if (args->source) {
		args->language = x_at_source > 0 ? (enum c_language)x_at_source : language_of(args->source);
		if (args->language == C_LANG_NONE)
			set_reason(args, C_NC_LANGUAGE, "%.100s is neither C nor C++", args->source);
	}
	return 0;
nomem:
	c_args_release(args);
	return -ENOMEM;
}
