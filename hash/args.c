/* rustc command-line parsing and cacheability; see args.h. */
#include "config.h"

#include "hash/args.h"
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const reason_names[RUSTC_REASON_COUNT] = {
	[RUSTC_CACHEABLE] = "cacheable",
	[RUSTC_NC_INCREMENTAL] = "incremental",
	[RUSTC_NC_STDIN] = "stdin-input",
	[RUSTC_NC_EMIT] = "emit",
	[RUSTC_NC_CRATE_TYPE] = "crate-type",
	[RUSTC_NC_UNKNOWN_FLAG] = "unknown-flag",
	[RUSTC_NC_NO_INPUT] = "no-input",
	[RUSTC_NC_MULTIPLE_INPUTS] = "multiple-inputs",
	[RUSTC_NC_QUERY] = "query",
	[RUSTC_NC_OUTPUT_FILE] = "output-file",
	[RUSTC_NC_NO_OUT_DIR] = "no-out-dir",
	[RUSTC_NC_UNSUPPORTED] = "unsupported-option",
	[RUSTC_NC_MALFORMED] = "malformed",
	[RUSTC_NC_PATH_OUTSIDE] = "path-outside-roots",
	[RUSTC_NC_DEP_INFO] = "dep-info-failed",
	[RUSTC_NC_LINK] = "link",
	[RUSTC_NC_LINK_FAILED] = "link-failed",
};

const char *rustc_reason_name(enum rustc_reason reason)
{
	if ((unsigned)reason >= RUSTC_REASON_COUNT)
		return "unknown";
	return reason_names[reason];
}

/* The first reason found wins: later ones would only hide the one a user must fix first. */
__attribute__((format(printf, 3, 4)))
static void set_reason(struct rustc_args *args, enum rustc_reason reason, const char *fmt, ...)
{
	va_list ap;
	if (args->reason != RUSTC_CACHEABLE)
		return;
	args->reason = reason;
	va_start(ap, fmt);
	vsnprintf(args->reason_detail, sizeof(args->reason_detail), fmt, ap);
	va_end(ap);
}

static int list_push(char ***list, size_t *n, const char *s, size_t len)
{
	char **grown;
	char *copy;

	if (*n >= RUSTC_ARGS_MAX)
		return -E2BIG;
	copy = strndup(s, len);
	if (!copy)
		return -ENOMEM;
	/* The capacity is the next power of two: grow when N is one, so pushes stay amortised O(1)
	 * without storing a capacity beside the list. */
	if (*n == 0 || (*n & (*n - 1)) == 0) {
		grown = realloc(*list, (*n ? 2 * *n : 1) * sizeof(**list));
		if (!grown) {
			free(copy);
			return -ENOMEM;
		}
		*list = grown;
	}
	(*list)[(*n)++] = copy;
	return 0;
}

int rustc_argfile_split(const char *data, size_t len, char ***list, size_t *n)
{
	size_t start = 0;

	while (start < len) {
		const char *nl = memchr(data + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t arglen = end - start;
		int ret;

		if (arglen > 0 && data[start + arglen - 1] == '\r')
			arglen--;
		ret = list_push(list, n, data + start, arglen);
		if (ret < 0)
			return ret;
		start = end + 1;
	}
	return 0;
}


/* How an option takes its value. */
enum opt_arity { OPT_FLAG, OPT_VALUE };

/* What the parser does with an option once its value is known. */
enum opt_action {
	ACT_KEEP,        /* hashed as written */
	ACT_CRATE_NAME,
	ACT_CRATE_TYPE,
	ACT_EMIT,
	ACT_OUT_DIR,
	ACT_EXTERN,
	ACT_LIBPATH,     /* -L */
	ACT_CODEGEN,     /* -C */
	ACT_TARGET,
	ACT_QUERY,       /* --print, --version... */
	ACT_OUTPUT_FILE, /* -o */
	ACT_UNSUPPORTED, /* known, but v1 does not cache it */
	ACT_UNSTABLE,    /* -Z */
	ACT_TEST,        /* --test builds a test harness binary */
	ACT_NATIVE_LIB,  /* -l */
};

struct opt {
	const char *long_name;  /* "--crate-name", or NULL */
	char short_name;        /* 'C', or 0 */
	enum opt_arity arity;
	enum opt_action action;
};

static const struct opt options[] = {
	{ "--crate-name", 0, OPT_VALUE, ACT_CRATE_NAME },
	{ "--crate-type", 0, OPT_VALUE, ACT_CRATE_TYPE },
	{ "--edition", 0, OPT_VALUE, ACT_KEEP },
	{ "--emit", 0, OPT_VALUE, ACT_EMIT },
	{ "--out-dir", 0, OPT_VALUE, ACT_OUT_DIR },
	{ "--extern", 0, OPT_VALUE, ACT_EXTERN },
	{ "--cfg", 0, OPT_VALUE, ACT_KEEP },
	{ "--check-cfg", 0, OPT_VALUE, ACT_KEEP },
	{ "--error-format", 0, OPT_VALUE, ACT_KEEP },
	{ "--json", 0, OPT_VALUE, ACT_KEEP },
	{ "--target", 0, OPT_VALUE, ACT_TARGET },
	{ "--cap-lints", 0, OPT_VALUE, ACT_KEEP },
	{ "--color", 0, OPT_VALUE, ACT_KEEP },
	{ "--diagnostic-width", 0, OPT_VALUE, ACT_KEEP },
	{ "--codegen", 'C', OPT_VALUE, ACT_CODEGEN },
	{ NULL, 'L', OPT_VALUE, ACT_LIBPATH },
	{ NULL, 'l', OPT_VALUE, ACT_NATIVE_LIB },
	{ NULL, 'o', OPT_VALUE, ACT_OUTPUT_FILE },
	{ NULL, 'Z', OPT_VALUE, ACT_UNSTABLE },
	{ "--allow", 'A', OPT_VALUE, ACT_KEEP },
	{ "--warn", 'W', OPT_VALUE, ACT_KEEP },
	{ "--deny", 'D', OPT_VALUE, ACT_KEEP },
	{ "--forbid", 'F', OPT_VALUE, ACT_KEEP },
	{ "--force-warn", 0, OPT_VALUE, ACT_KEEP },
	{ "--print", 0, OPT_VALUE, ACT_QUERY },
	{ "--explain", 0, OPT_VALUE, ACT_QUERY },
	{ "--sysroot", 0, OPT_VALUE, ACT_UNSUPPORTED },
	{ "--remap-path-prefix", 0, OPT_VALUE, ACT_UNSUPPORTED },
	{ "--test", 0, OPT_FLAG, ACT_TEST },
	{ NULL, 'g', OPT_FLAG, ACT_KEEP },
	{ NULL, 'O', OPT_FLAG, ACT_KEEP },
	{ "--verbose", 'v', OPT_FLAG, ACT_KEEP },
	{ "--version", 'V', OPT_FLAG, ACT_QUERY },
	{ "--help", 'h', OPT_FLAG, ACT_QUERY },
};

/* Find the option ARG names. *INLINE_VALUE gets the value written in the same argument
 * (`--emit=x`, `-Cx`), or NULL. */
static const struct opt *find_option(const char *arg, const char **inline_value)
{
	*inline_value = NULL;
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
		const struct opt *o = &options[i];
		if (o->long_name) {
			size_t n = strlen(o->long_name);
			if (strncmp(arg, o->long_name, n) == 0) {
				if (arg[n] == '\0')
					return o;
				if (arg[n] == '=' && o->arity == OPT_VALUE) {
					*inline_value = arg + n + 1;
					return o;
				}
			}
		}
		if (o->short_name && arg[0] == '-' && arg[1] == o->short_name) {
			if (arg[2] == '\0')
				return o;
			if (o->arity == OPT_VALUE) {
				*inline_value = arg + 2;
				return o;
			}
		}
	}
	return NULL;
}

/* The bit of crate type T, 0 for a name rustc does not know. */
static unsigned crate_type_bit(const char *t)
{
	static const struct {
		const char *name;
		unsigned bit;
	} types[] = {
		{ "lib", RUSTC_CRATE_RLIB }, { "rlib", RUSTC_CRATE_RLIB },
		{ "proc-macro", RUSTC_CRATE_PROC_MACRO }, { "bin", RUSTC_CRATE_BIN },
		{ "dylib", RUSTC_CRATE_DYLIB }, { "cdylib", RUSTC_CRATE_CDYLIB },
		{ "staticlib", RUSTC_CRATE_STATICLIB },
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i].name) == 0)
			return types[i].bit;
	return 0;
}

static int replace_string(char **slot, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* Handle --crate-type VALUE (comma-separated list). */
static void handle_crate_type(struct rustc_args *args, const char *value)
{
	const char *p = value;
	unsigned bit;
	args->has_crate_type = 1;
	while (*p) {
		size_t n = strcspn(p, ",");
		char type[32];
		if (n == 0 || n >= sizeof(type)) {
			set_reason(args, RUSTC_NC_MALFORMED, "--crate-type %.60s", value);
			return;
		}
		memcpy(type, p, n);
		type[n] = '\0';
		bit = crate_type_bit(type);
		args->crate_types |= bit;
		if (bit == 0)
			set_reason(args, RUSTC_NC_MALFORMED, "crate type %s", type);
		else if (bit == RUSTC_CRATE_STATICLIB)
			set_reason(args, RUSTC_NC_CRATE_TYPE, "crate type %s", type);
		p += n;
		if (*p == ',')
			p++;
	}
}

/* Handle --emit VALUE: kinds, each maybe `kind=path`. */
static void handle_emit(struct rustc_args *args, const char *value)
{
	const char *p = value;
	args->emit = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		size_t kind_len = strcspn(p, ",=");
		if (n == 0) {
			set_reason(args, RUSTC_NC_MALFORMED, "--emit %.60s", value);
			return;
		}
		if (kind_len < n)
			set_reason(args, RUSTC_NC_OUTPUT_FILE, "--emit %.*s", (int)(n > 60 ? 60 : n), p);
		if (kind_len == 4 && strncmp(p, "link", 4) == 0)
			args->emit |= RUSTC_EMIT_LINK;
		else if (kind_len == 8 && strncmp(p, "metadata", 8) == 0)
			args->emit |= RUSTC_EMIT_METADATA;
		else if (kind_len == 8 && strncmp(p, "dep-info", 8) == 0)
			args->emit |= RUSTC_EMIT_DEP_INFO;
		else {
			args->emit |= RUSTC_EMIT_OTHER;
			set_reason(args, RUSTC_NC_EMIT, "--emit %.*s", (int)(kind_len > 60 ? 60 : kind_len), p);
		}
		p += n;
		if (*p == ',')
			p++;
	}
}

static int handle_extern(struct rustc_args *args, const char *value)
{
	struct rustc_extern *grown;
	const char *eq = strchr(value, '=');
	const char *name = value;
	size_t name_len = eq ? (size_t)(eq - value) : strlen(value);
	const char *colon = memchr(name, ':', name_len);

	/* `priv:name=path`, `noprelude:name=path`, `priv,noprelude:name`: options before ':'. */
	if (colon) {
		name_len -= (size_t)(colon + 1 - name);
		name = colon + 1;
	}
	if (name_len == 0) {
		set_reason(args, RUSTC_NC_MALFORMED, "--extern %.60s", value);
		return 0;
	}
	grown = realloc(args->externs, (args->n_externs + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	args->externs = grown;
	grown[args->n_externs].name = strndup(name, name_len);
	grown[args->n_externs].path = eq ? strdup(eq + 1) : NULL;
	args->n_externs++;
	if (!grown[args->n_externs - 1].name || (eq && !grown[args->n_externs - 1].path))
		return -ENOMEM;
	if (eq && eq[1] == '\0')
		set_reason(args, RUSTC_NC_MALFORMED, "--extern %.60s", value);
	return 0;
}

static int handle_libpath(struct rustc_args *args, const char *value)
{
	static const char dep[] = "dependency=";
	const char *eq = strchr(value, '=');
	if (eq) {
		size_t kind_len = (size_t)(eq - value);
		static const char *const kinds[] = { "dependency", "crate", "native", "framework", "all" };
		int known = 0;
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strlen(kinds[i]) == kind_len && strncmp(value, kinds[i], kind_len) == 0)
				known = 1;
		if (!known)
			set_reason(args, RUSTC_NC_MALFORMED, "-L %.60s", value);
	}
	if (strncmp(value, dep, sizeof(dep) - 1) == 0 && !args->dep_dir)
		return replace_string(&args->dep_dir, value + sizeof(dep) - 1);
	/* Where the linker looks for -l: `native=`, `all=` and kind-less paths. */
	if (!eq || strncmp(value, "native=", 7) == 0 || strncmp(value, "all=", 4) == 0) {
		const char *path = eq ? eq + 1 : value;
		return list_push(&args->native_dirs, &args->n_native_dirs, path, strlen(path));
	}
	return 0;
}

/* Handle -l VALUE: `[KIND[:MODIFIERS]=]NAME[:RENAME]`. */
static int handle_native_lib(struct rustc_args *args, const char *value)
{
	struct rustc_native_lib *grown, *lib;
	const char *eq = strchr(value, '=');
	const char *name = eq ? eq + 1 : value;
	size_t name_len = strcspn(name, ":");

	if (name_len == 0) {
		set_reason(args, RUSTC_NC_MALFORMED, "-l %.60s", value);
		return 0;
	}
	grown = realloc(args->native_libs, (args->n_native_libs + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	args->native_libs = grown;
	lib = &grown[args->n_native_libs++];
	memset(lib, 0, sizeof(*lib));
	lib->name = strndup(name, name_len);
	if (eq) {
		size_t kind_len = strcspn(value, ":=");
		lib->kind = strndup(value, kind_len);
		if (!lib->kind)
			return -ENOMEM;
		/* modifiers are a comma-separated list of +name/-name after the ':' */
		if (value[kind_len] == ':') {
			const char *m = value + kind_len + 1;
			while (m < eq) {
				size_t n = strcspn(m, ",=");
				if (n == 9 && strncmp(m, "+verbatim", 9) == 0)
					lib->verbatim = 1;
				m += n + (m[n] == ',');
				if (n == 0)
					break;
			}
		}
	}
	return lib->name ? 0 : -ENOMEM;
}

/* Record why the link tree could not reproduce this unit's link (a reason only when the unit
 * links: a lib's link arguments are never used). The first one stays. */
__attribute__((format(printf, 2, 3)))
static void note_link_refusal(struct rustc_args *args, const char *fmt, ...)
{
	va_list ap;
	if (args->link_refusal[0])
		return;
	va_start(ap, fmt);
	vsnprintf(args->link_refusal, sizeof(args->link_refusal), fmt, ap);
	va_end(ap);
}

/* Does a -C link-arg(s) value name a host file: a path, or an @file? */
static int link_arg_names_file(const char *value)
{
	if (strchr(value, '/'))
		return 1;
	for (const char *p = value; *p; p++)
		if (*p == '@' && (p == value || p[-1] == ' ' || p[-1] == ','))
			return 1;
	return 0;
}

/* -C options that read files or keep state outside the job. */
static void handle_codegen(struct rustc_args *args, const char *value)
{
	static const char *const refused[] = {
		"profile-use", "profile-generate", "profile-sample-use", "linker-plugin-lto",
	};
	size_t key_len = strcspn(value, "=");
	if (key_len == 0) {
		set_reason(args, RUSTC_NC_MALFORMED, "-C %.60s", value);
		return;
	}
	if (key_len == 11 && strncmp(value, "incremental", 11) == 0) {
		set_reason(args, RUSTC_NC_INCREMENTAL, "-C incremental");
		return;
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strlen(refused[i]) == key_len && strncmp(value, refused[i], key_len) == 0)
			set_reason(args, RUSTC_NC_UNSUPPORTED, "-C %s", refused[i]);
#define KEY_IS(k) (key_len == sizeof(k) - 1 && strncmp(value, k, key_len) == 0)
	if (KEY_IS("linker") || KEY_IS("linker-flavor") || KEY_IS("link-self-contained")
	    || KEY_IS("save-temps"))
		note_link_refusal(args, "-C %.100s", value);
	else if ((KEY_IS("link-arg") || KEY_IS("link-args")) && value[key_len] == '='
		 && link_arg_names_file(value + key_len + 1))
		note_link_refusal(args, "-C %.100s names a file", value);
	else if (KEY_IS("target-feature") && strstr(value, "+crt-static"))
		note_link_refusal(args, "-C %.100s", value);
	else if (KEY_IS("split-debuginfo") && strcmp(value + key_len, "=off") != 0)
		note_link_refusal(args, "-C %.100s", value);
#undef KEY_IS
}

static int apply_option(struct rustc_args *args, const struct opt *o, const char *value, size_t value_index)
{
	switch (o->action) {
	case ACT_KEEP:
		return 0;
	case ACT_CRATE_NAME:
		return replace_string(&args->crate_name, value);
	case ACT_CRATE_TYPE:
		handle_crate_type(args, value);
		return 0;
	case ACT_EMIT:
		handle_emit(args, value);
		return 0;
	case ACT_OUT_DIR:
		args->out_dir_index = (int)value_index;
		return replace_string(&args->out_dir, value);
	case ACT_EXTERN:
		return handle_extern(args, value);
	case ACT_LIBPATH:
		return handle_libpath(args, value);
	case ACT_CODEGEN:
		handle_codegen(args, value);
		return 0;
	case ACT_TARGET:
		return replace_string(&args->target, value);
	case ACT_QUERY:
		set_reason(args, RUSTC_NC_QUERY, "%s", o->long_name ? o->long_name : "-V");
		return 0;
	case ACT_OUTPUT_FILE:
		set_reason(args, RUSTC_NC_OUTPUT_FILE, "-o");
		return 0;
	case ACT_UNSUPPORTED:
		if (o->long_name)
			set_reason(args, RUSTC_NC_UNSUPPORTED, "%s", o->long_name);
		else
			set_reason(args, RUSTC_NC_UNSUPPORTED, "-%c", o->short_name);
		return 0;
	case ACT_UNSTABLE:
		set_reason(args, RUSTC_NC_UNSUPPORTED, "-Z %.60s", value);
		return 0;
	case ACT_TEST:
		set_reason(args, RUSTC_NC_CRATE_TYPE, "--test");
		return 0;
	case ACT_NATIVE_LIB:
		return handle_native_lib(args, value);
	}
	return 0;
}

/* Copy ARGV into args->argv, replacing each @file by the file's lines. */
static int expand_argv(struct rustc_args *args, int argc, char *const *argv)
{
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int ret;
		if (a[0] == '@' && a[1] != '\0') {
			char *data = NULL;
			size_t len = 0;
			ret = io_read_file_at(AT_FDCWD, a + 1, 0, RUSTC_ARGFILE_MAX, &data, &len);
			if (ret == -ENOMEM)
				return ret;
			if (ret < 0) {
				set_reason(args, RUSTC_NC_MALFORMED, "argfile %.100s: %s", a + 1, strerror(-ret));
				continue;
			}
			ret = rustc_argfile_split(data, len, &args->argv, &args->argc);
			free(data);
		} else {
			ret = list_push(&args->argv, &args->argc, a, strlen(a));
		}
		if (ret == -E2BIG) {
			set_reason(args, RUSTC_NC_MALFORMED, "more than %d arguments", RUSTC_ARGS_MAX);
			return 0;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

int rustc_args_parse(struct rustc_args *args, int argc, char *const *argv)
{
	int ret;
	int n_inputs = 0;

	memset(args, 0, sizeof(*args));
	args->input_index = -1;
	args->out_dir_index = -1;
	args->emit = RUSTC_EMIT_LINK;

	ret = expand_argv(args, argc, argv);
	if (ret < 0)
		goto fail;

	for (size_t i = 0; i < args->argc; i++) {
		const char *a = args->argv[i];
		const char *value = NULL;
		size_t value_index = i;
		const struct opt *o;

		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (n_inputs++ == 0)
				args->input_index = (int)i;
			if (strcmp(a, "-") == 0)
				set_reason(args, RUSTC_NC_STDIN, "input from stdin");
			continue;
		}
		if (strcmp(a, "-vV") == 0 || strcmp(a, "-Vv") == 0) {
			set_reason(args, RUSTC_NC_QUERY, "%s", a);
			continue;
		}
		o = find_option(a, &value);
		if (!o) {
			set_reason(args, RUSTC_NC_UNKNOWN_FLAG, "%.100s", a);
			continue;
		}
		if (o->arity == OPT_VALUE && !value) {
			if (i + 1 >= args->argc) {
				set_reason(args, RUSTC_NC_MALFORMED, "%.60s needs a value", a);
				break;
			}
			value = args->argv[++i];
			value_index = i;
		}
		ret = apply_option(args, o, value ? value : "", value_index);
		if (ret < 0)
			goto fail;
	}

	if (n_inputs == 0)
		set_reason(args, RUSTC_NC_NO_INPUT, "no crate root given");
	else if (n_inputs > 1)
		set_reason(args, RUSTC_NC_MULTIPLE_INPUTS, "%d inputs", n_inputs);
	if (!args->has_crate_type)
		set_reason(args, RUSTC_NC_CRATE_TYPE, "no --crate-type (the source decides)");
	if (!args->out_dir)
		set_reason(args, RUSTC_NC_NO_OUT_DIR, "no --out-dir");
	if (args->crate_types & RUSTC_CRATE_LINKS) {
		if (args->link_refusal[0])
			set_reason(args, RUSTC_NC_LINK, "%s", args->link_refusal);
	} else if (args->n_native_libs) {
		/* a lib bundles static native libraries into its rlib: not cached yet */
		set_reason(args, RUSTC_NC_UNSUPPORTED, "-l");
	}
	return 0;
fail:
	rustc_args_release(args);
	return ret;
}

void rustc_args_release(struct rustc_args *args)
{
	for (size_t i = 0; i < args->argc; i++)
		free(args->argv[i]);
	free(args->argv);
	for (size_t i = 0; i < args->n_externs; i++) {
		free(args->externs[i].name);
		free(args->externs[i].path);
	}
	free(args->externs);
	for (size_t i = 0; i < args->n_native_libs; i++) {
		free(args->native_libs[i].kind);
		free(args->native_libs[i].name);
	}
	free(args->native_libs);
	for (size_t i = 0; i < args->n_native_dirs; i++)
		free(args->native_dirs[i]);
	free(args->native_dirs);
	free(args->out_dir);
	free(args->crate_name);
	free(args->target);
	free(args->dep_dir);
	memset(args, 0, sizeof(*args));
	args->input_index = -1;
	args->out_dir_index = -1;
}
