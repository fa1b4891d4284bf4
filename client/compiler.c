/* Telling a rustc from a C compiler and from anything else (see compiler.h).
 *
 * How a program is identified, and why this way. Everything here runs on every invocation,
 * rustc's included, so it runs nothing: spawning `cc --version` or `rustc -vV` would cost a
 * process per call, and on the pass-through path that is work the caller never asked for.
 * Looking inside the file (ELF notes, DT_NEEDED) tells a rustc binary apart but not a rustup
 * proxy (rustup itself) nor a C driver (one gcc binary answers to many names). What a file is
 * for a compiler driver is the name it answers to: gcc, clang and rustup all pick their
 * behaviour from their name. So, in order:
 *
 *   1. The names on the way to the file: the name as given, then every link of PATH's symlink
 *      chain down to the file itself (/usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc ->
 *      gcc-12 -> x86_64-linux-gnu-gcc-12; a ccache masquerade link gcc -> ccache). One of them
 *      a C or C++ driver name (cc, c++, gcc, g++, clang, clang++, with an optional target
 *      prefix "x86_64-linux-gnu-" and version suffix "-12", "-15.0", "12"): COMPILER_C.
 *   2. One of them rustc (or rustc-<version>, clippy-driver): COMPILER_RUSTC. This covers a
 *      toolchain's bin/rustc and rustup's proxies, which are links to rustup named rustc.
 *   3. Neither: what cargo calls as a rustc is a rustc. Every call cargo makes, and the probes
 *      of build scripts such as autocfg, carry `-vV`, `--crate-name` or `--print`, which no C
 *      compiler takes; with one of those the program is a rustc under another name (a wrapper
 *      script, RUSTC=/opt/x/bin/my-rustc), and the rustc path checks further (hash/invocation.c
 *      rustc_resolve) and runs it locally if it is not. Anything else: COMPILER_OTHER.
 *
 * A wrong answer costs little either way: a rustc taken for another program is run uncached,
 * another program taken for a rustc is run after one warning. A C compiler never reaches the
 * rustc path, whatever it is called, when its name or a link to it says what it is.
 */
#include "config.h"

#include "client/compiler.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernel gives up after 40 links; so do we. */
#define SYMLINK_HOPS_MAX 40

/* The PATH execvp(3) uses when PATH is unset (glibc's confstr(_CS_PATH)). */
#define DEFAULT_SEARCH_PATH "/bin:/usr/bin"

int compiler_find(const char *name, char *path, size_t size)
{
	const char *search = getenv("PATH");
	size_t name_len = strlen(name);
	int ret = -ENOENT;

	if (name_len == 0)
		return -ENOENT;
	if (strchr(name, '/')) {
		if (name_len >= size)
			return -ENAMETOOLONG;
		memcpy(path, name, name_len + 1);
		return 0;
	}
	if (!search)
		search = DEFAULT_SEARCH_PATH;
	for (const char *dir = search;; ) {
		size_t dir_len = strcspn(dir, ":");
		struct stat st;
		int n;

		/* An empty entry is the current directory, as for the shell. */
		if (dir_len == 0)
			n = snprintf(path, size, "%s", name);
		else
			n = snprintf(path, size, "%.*s/%s", (int)dir_len, dir, name);
		if (n >= 0 && (size_t)n < size && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
				return 0;
			ret = -EACCES;
		}
		if (dir[dir_len] == '\0')
			break;
		dir += dir_len + 1;
	}
	return ret;
}

/* Is S (LEN bytes) empty or a version suffix: "12", "-12", "-15.0.7"? */
static int is_version_suffix(const char *s, size_t len)
{
	size_t i = 0;

	if (len > 0 && s[0] == '-')
		i = 1;
	if (i == len)
		return i == 0;
	if (s[i] < '0' || s[i] > '9')
		return 0;
	for (; i < len; i++)
		if ((s[i] < '0' || s[i] > '9') && s[i] != '.')
			return 0;
	return 1;
}

/* Is BASE a C or C++ driver name: [<target>-]<driver>[<version>]? The driver starts BASE or
 * follows a '-', so gcc-ar, clang-tidy and c++filt are not drivers. */
static int is_c_driver_name(const char *base)
{
	static const char *const drivers[] = { "cc", "c++", "gcc", "g++", "clang", "clang++" };
	size_t len = strlen(base);

	for (size_t at = 0; at < len; at++) {
		if (at > 0 && base[at - 1] != '-')
			continue;
		for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
			size_t d = strlen(drivers[i]);
			if (strncmp(base + at, drivers[i], d) == 0 && is_version_suffix(base + at + d, len - at - d))
				return 1;
		}
	}
	return 0;
}

/* Is BASE a rustc name: rustc, rustc-<version>, clippy-driver? */
static int is_rustc_name(const char *base)
{
	return (strncmp(base, "rustc", 5) == 0 && is_version_suffix(base + 5, strlen(base + 5)))
	       || strcmp(base, "clippy-driver") == 0;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The kind one name says, COMPILER_OTHER when it says nothing. */
static enum compiler_kind kind_of_name(const char *path)
{
	const char *base = base_name(path);

	if (is_c_driver_name(base))
		return COMPILER_C;
	if (is_rustc_name(base))
		return COMPILER_RUSTC;
	return COMPILER_OTHER;
}

/* Does ARGV look like a call cargo makes to rustc? */
static int has_rustc_arguments(int argc, char *const *argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "-vV") == 0 || strcmp(argv[i], "--crate-name") == 0
		    || strncmp(argv[i], "--crate-name=", 13) == 0 || strcmp(argv[i], "--print") == 0
		    || strncmp(argv[i], "--print=", 8) == 0)
			return 1;
	return 0;
}

enum compiler_kind compiler_identify(const char *name, const char *path, int argc, char *const *argv)
{
	enum compiler_kind kind = kind_of_name(name);
	char link[PATH_MAX], target[PATH_MAX];

	if (kind == COMPILER_OTHER)
		snprintf(link, sizeof(link), "%s", path);
	/* Each hop is one readlink(2); a file that is not a link ends the walk with EINVAL. */
	for (int hop = 0; kind == COMPILER_OTHER && hop < SYMLINK_HOPS_MAX; hop++) {
		ssize_t n = readlink(link, target, sizeof(target));
		char *slash;

		if (n <= 0 || (size_t)n >= sizeof(target))
			break;
		target[n] = '\0';
		kind = kind_of_name(target);
		/* A relative target is relative to the link's directory. */
		slash = strrchr(link, '/');
		if (target[0] == '/' || !slash) {
			memcpy(link, target, (size_t)n + 1);
		} else {
			size_t dir_len = (size_t)(slash - link) + 1;
			if (dir_len + (size_t)n >= sizeof(link))
				break;
			memcpy(link + dir_len, target, (size_t)n + 1);
		}
	}
	if (kind == COMPILER_OTHER && has_rustc_arguments(argc, argv))
		kind = COMPILER_RUSTC;
	return kind;
}

int compiler_exec(const char *path, char **argv)
{
	int err;

	execv(path, argv);
	err = errno;
	if (err == ENOEXEC) {
		/* A file without a #! line: execvp(3) and the shell hand it to sh. */
		int argc = 0;
		char **sh_argv;

		while (argv[argc])
			argc++;
		sh_argv = calloc((size_t)argc + 2, sizeof(*sh_argv));
		if (sh_argv) {
			sh_argv[0] = "/bin/sh";
			sh_argv[1] = (char *)path;
			for (int i = 1; i <= argc; i++)
				sh_argv[i + 1] = argv[i];
			execv("/bin/sh", sh_argv);
			err = errno;
			free(sh_argv);
		}
	}
	fprintf(stderr, "cachepot: %s: %s\n", path, strerror(err));
	return err == ENOENT || err == ENOTDIR ? 127 : 126;
}

int compiler_not_found(const char *name, int ret)
{
	if (ret == -ENOENT && !strchr(name, '/')) {
		fprintf(stderr, "cachepot: %s: command not found\n", name);
		return 127;
	}
	fprintf(stderr, "cachepot: %s: %s\n", name, strerror(-ret));
	return ret == -ENOENT ? 127 : 126;
}
