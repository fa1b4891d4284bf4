/* The parts of the toolchain collected from the host's C compiler driver: the link part and
 * the C part; see toolchain.h.
 *
 * What a link or a compile opens is asked of the driver itself (`-print-prog-name`,
 * `-print-file-name`, `-print-search-dirs`), with a fixed environment, and linker scripts are
 * followed to the files they name. Every file must lie under /usr (or /lib, /lib64, which
 * Debian merges into it): a part that needs anything else is not collected at all, and link
 * units (or C compiles) are then not cached.
 */
#include "config.h"

#include "hash/toolchain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/io.h"
#include "hash/pathmap.h"

/* The most bytes of a driver's answer, and of a linker script, read. */
#define QUERY_MAX (64u << 10)
#define SCRIPT_MAX (64u << 10)

/* Files the driver is asked for: the start files of every kind of link rustc makes (pie and
 * non-pie executables, shared objects), and the libraries rustc's std links, each as -l finds
 * it (in the first directory of the search path that has it, the shared library before the
 * archive). What the driver does not find the linker would not find either: both search the
 * same path, and the tree holds a subset of the host's files at the host's paths, so the link
 * in the sandbox picks the same file the host's would. */
static const char *const link_files[] = {
	"crt1.o", "Scrt1.o", "crti.o", "crtn.o", "crtbegin.o", "crtbeginS.o", "crtend.o", "crtendS.o",
	"liblto_plugin.so",
};
static const char *const link_libs[] = { "gcc_s", "gcc", "gcc_eh", "util", "rt", "pthread", "m", "dl", "c" };

/* The environment of every query: nothing of the caller's (COMPILER_PATH and friends would
 * change the answers). */
static char *const query_env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

/* Run PROGRAM with the single argument ARG; *OUT gets what it printed (malloc'd). */
static int run_query(const char *program, const char *arg, char **out)
{
	char *argv[] = { (char *)program, (char *)arg, NULL };
	char *buf = malloc(QUERY_MAX);
	int ret;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	ret = io_run_capture(argv, query_env, 0, buf, QUERY_MAX, NULL);
	if (ret != 0) {
		free(buf);
		return ret < 0 ? ret : -ENOEXEC;
	}
	*out = buf;
	return 0;
}

/* The first line DRIVER prints for ARG (malloc'd). */
static int ask_driver(const char *driver, const char *arg, char **out)
{
	int ret = run_query(driver, arg, out);
	if (ret == 0)
		(*out)[strcspn(*out, "\n")] = '\0';
	return ret;
}

/* The tree path of the host file PATH (absolute): PATH normalised lexically, /usr/x as usr/x
 * and /lib/x, /lib64/x as usr/lib/x, usr/lib64/x. -EXDEV when it lies anywhere else. */
static int tree_rel(const char *path, char **rel)
{
	char *norm = NULL;
	int ret = path_normalise(path, NULL, &norm);

	*rel = NULL;
	if (ret < 0)
		return ret;
	if (strncmp(norm, "/usr/", 5) == 0)
		ret = (*rel = strdup(norm + 1)) ? 0 : -ENOMEM;
	else if (strncmp(norm, "/lib/", 5) == 0 || strncmp(norm, "/lib64/", 7) == 0)
		ret = asprintf(rel, "usr%s", norm) < 0 ? -ENOMEM : 0;
	else
		ret = -EXDEV;
	free(norm);
	return ret;
}

/* What is being collected: the builder, the driver's library search path, and the files
 * added so far that may be linker scripts (to be read once the rest is in). */
struct link_collect {
	struct toolchain_builder b;
	char **search;   /* the driver's "libraries:" directories */
	size_t n_search;
	int depth;       /* of linker scripts naming linker scripts */
};

static void link_collect_release(struct link_collect *c)
{
	toolchain_builder_release(&c->b);
	for (size_t i = 0; i < c->n_search; i++)
		free(c->search[i]);
	free(c->search);
	memset(c, 0, sizeof(*c));
}

static int add_host_file(struct link_collect *c, const char *path);

/* Resolve NAME (a file name, or -lNAME) along the search path, as the linker does: in each
 * directory the shared library before the archive. *FOUND is malloc'd, NULL when nothing. */
static int search_library(const struct link_collect *c, const char *name, char **found)
{
	char buf[PATH_MAX];
	struct stat st;

	*found = NULL;
	for (size_t i = 0; i < c->n_search; i++) {
		if (strncmp(name, "-l", 2) == 0) {
			static const char *const suffixes[] = { ".so", ".a" };
			for (size_t k = 0; k < 2; k++)
				if (snprintf(buf, sizeof(buf), "%s/lib%s%s", c->search[i], name + 2, suffixes[k])
					    < (int)sizeof(buf)
				    && stat(buf, &st) == 0 && S_ISREG(st.st_mode))
					goto hit;
		} else if (snprintf(buf, sizeof(buf), "%s/%s", c->search[i], name) < (int)sizeof(buf)
			   && stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
			goto hit;
		}
	}
	return 0;
hit:
	*found = strdup(buf);
	return *found ? 0 : -ENOMEM;
}

/* Follow a GNU ld script (TEXT, LEN bytes, at the host path SCRIPT): every file its GROUP, INPUT
 * and AS_NEEDED name joins the tree. -ENOENT when one cannot be found. */
static int follow_script(struct link_collect *c, const char *script, char *text)
{
	char *p = text, *save = NULL, *tok;
	int ret = 0;

	/* comments out */
	while ((p = strstr(p, "/*"))) {
		char *end = strstr(p + 2, "*/");
		size_t n = end ? (size_t)(end + 2 - p) : strlen(p);
		memset(p, ' ', n);
		p += n;
	}
	for (tok = strtok_r(text, " \t\r\n(),", &save); tok && ret == 0; tok = strtok_r(NULL, " \t\r\n(),", &save)) {
		char *found = NULL;
		if (strcmp(tok, "GROUP") == 0 || strcmp(tok, "INPUT") == 0 || strcmp(tok, "AS_NEEDED") == 0)
			continue;
		if (tok[0] == '/') {
			ret = add_host_file(c, tok);
			continue;
		}
		if (strncmp(tok, "-l", 2) != 0 && !strstr(tok, ".so") && !strstr(tok, ".a") && !strstr(tok, ".o"))
			continue; /* OUTPUT_FORMAT(elf64-x86-64) and other commands */
		/* A bare name is looked for beside the script first, then along the path. */
		if (tok[0] != '-') {
			char beside[PATH_MAX];
			const char *slash = strrchr(script, '/');
			struct stat st;
			if (slash && snprintf(beside, sizeof(beside), "%.*s/%s", (int)(slash - script), script, tok)
					     < (int)sizeof(beside)
			    && stat(beside, &st) == 0 && S_ISREG(st.st_mode)) {
				ret = add_host_file(c, beside);
				continue;
			}
		}
		ret = search_library(c, tok, &found);
		if (ret == 0 && !found)
			ret = -ENOENT;
		if (ret == 0)
			ret = add_host_file(c, found);
		free(found);
	}
	return ret;
}

/* Add the host file PATH under its tree path; when it is a linker script (neither ELF nor an
 * archive), what it names too. */
static int add_host_file(struct link_collect *c, const char *path)
{
	char *rel = NULL, *text = NULL;
	size_t len = 0, before = c->b.n;
	int ret = tree_rel(path, &rel);

	if (ret == 0)
		ret = toolchain_builder_add(&c->b, path, rel);
	free(rel);
	if (ret < 0 || c->b.n == before)
		return ret;
	if (c->b.files[before].size > SCRIPT_MAX)
		return 0;
	ret = io_read_file_at(AT_FDCWD, c->b.files[before].host_path, 0, SCRIPT_MAX, &text, &len);
	if (ret < 0)
		return ret;
	if ((len >= 4 && memcmp(text, "\177ELF", 4) == 0) || (len >= 8 && memcmp(text, "!<arch>\n", 8) == 0)
	    || memchr(text, '\0', len)) {
		free(text);
		return 0;
	}
	if (++c->depth > 8) {
		free(text);
		return -ELOOP;
	}
	ret = follow_script(c, path, text);
	c->depth--;
	free(text);
	return ret;
}

/* The driver's library search path, from `-print-search-dirs`. */
static int read_search_dirs(struct link_collect *c, const char *driver)
{
	char *buf = NULL, *line, *save = NULL;
	int ret = run_query(driver, "-print-search-dirs", &buf);

	if (ret < 0)
		return ret;
	for (line = strtok_r(buf, "\n", &save); line && ret == 0; line = strtok_r(NULL, "\n", &save)) {
		char *dir, *dsave = NULL;
		if (strncmp(line, "libraries: =", 12) != 0)
			continue;
		for (dir = strtok_r(line + 12, ":", &dsave); dir && ret == 0; dir = strtok_r(NULL, ":", &dsave)) {
			char **grown = realloc(c->search, (c->n_search + 1) * sizeof(*grown));
			if (!grown) {
				ret = -ENOMEM;
				break;
			}
			c->search = grown;
			c->search[c->n_search] = strdup(dir);
			if (!c->search[c->n_search])
				ret = -ENOMEM;
			else
				c->n_search++;
		}
	}
	free(buf);
	return ret;
}

/* The host triple of the rustc RUSTC (`rustc -vV`). */
static int rustc_host(const char *rustc, char *host, size_t len)
{
	char *buf = NULL, *p;
	int ret = run_query(rustc, "-vV", &buf);

	if (ret < 0)
		return ret;
	p = strstr(buf, "\nhost: ");
	if (!p) {
		free(buf);
		return -ENOEXEC;
	}
	p += 7;
	p[strcspn(p, "\n")] = '\0';
	ret = snprintf(host, len, "%s", p) < (int)len && !strchr(p, '/') && p[0] ? 0 : -ENOEXEC;
	free(buf);
	return ret;
}

/* rustc's self-contained linker (rust-lld and the gcc-ld wrappers the driver finds through
 * rustc's -B), and its closure. 0 when the sysroot has none (rustc then uses the driver's ld). */
static int add_rust_lld(struct link_collect *c, const struct toolchain *base, const char *host, int *have)
{
	static const char *const wrappers[] = { "ld.lld", "ld64.lld", "lld-link", "wasm-ld" };
	char path[PATH_MAX], rel[PATH_MAX];
	struct stat st;
	int ret;

	*have = 0;
	snprintf(path, sizeof(path), "%s/lib/rustlib/%s/bin/rust-lld", base->sysroot, host);
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	snprintf(rel, sizeof(rel), "rust/lib/rustlib/%s/bin/rust-lld", host);
	ret = toolchain_builder_add(&c->b, path, rel);
	if (ret == 0)
		ret = toolchain_builder_add_closure(&c->b, path, base->sysroot);
	for (size_t i = 0; ret == 0 && i < sizeof(wrappers) / sizeof(wrappers[0]); i++) {
		snprintf(path, sizeof(path), "%s/lib/rustlib/%s/bin/gcc-ld/%s", base->sysroot, host, wrappers[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(rel, sizeof(rel), "rust/lib/rustlib/%s/bin/gcc-ld/%s", host, wrappers[i]);
		ret = toolchain_builder_add(&c->b, path, rel);
		if (ret == 0)
			ret = toolchain_builder_add_closure(&c->b, path, base->sysroot);
		if (ret == 0 && strcmp(wrappers[i], "ld.lld") == 0)
			*have = 1;
	}
	return ret;
}

/* A program the driver runs (collect2, lto-wrapper, ld): its path as the driver finds it, added
 * with its closure. REQUIRED: not finding it is an error. */
static int add_driver_program(struct link_collect *c, const char *driver, const char *name, int required,
			      const char *sysroot)
{
	char arg[64], *path = NULL;
	size_t before = c->b.n;
	int ret;

	snprintf(arg, sizeof(arg), "-print-prog-name=%s", name);
	ret = ask_driver(driver, arg, &path);
	if (ret == 0 && path[0] != '/') {
		ret = required ? -ENOENT : 0;
		goto out;
	}
	if (ret == 0)
		ret = add_host_file(c, path);
	if (ret == 0 && c->b.n > before)
		ret = toolchain_builder_add_closure(&c->b, c->b.files[before].host_path, sysroot);
out:
	free(path);
	return ret;
}

int toolchain_link_collect(const struct toolchain *base, const char *driver, struct toolchain *link)
{
	struct link_collect c = { 0 };
	char host[128], arg[PATH_MAX], *real = NULL, *found = NULL;
	int have_lld = 0, ret;

	memset(link, 0, sizeof(*link));
	real = realpath(driver, NULL);
	if (!real)
		return -errno;
	/* In the sandbox the driver is /usr/bin/cc, first in the link job's fixed PATH; it finds
	 * its programs and libraries from there exactly as the host's does from /usr/bin. */
	ret = toolchain_builder_add(&c.b, real, "usr/bin/cc");
	if (ret == 0)
		ret = toolchain_builder_add_closure(&c.b, real, base->sysroot);
	if (ret == 0)
		ret = read_search_dirs(&c, real);
	if (ret == 0)
		ret = rustc_host(base->rustc, host, sizeof(host));
	if (ret == 0)
		ret = add_driver_program(&c, real, "collect2", 1, base->sysroot);
	if (ret == 0)
		ret = add_driver_program(&c, real, "lto-wrapper", 0, base->sysroot);
	if (ret == 0)
		ret = add_rust_lld(&c, base, host, &have_lld);
	if (ret == 0 && !have_lld)
		ret = add_driver_program(&c, real, "ld", 1, base->sysroot);
	for (size_t i = 0; ret == 0 && i < sizeof(link_files) / sizeof(link_files[0]); i++) {
		snprintf(arg, sizeof(arg), "-print-file-name=%s", link_files[i]);
		ret = ask_driver(real, arg, &found);
		if (ret == 0 && found[0] == '/')
			ret = add_host_file(&c, found);
		free(found);
		found = NULL;
	}
	for (size_t i = 0; ret == 0 && i < sizeof(link_libs) / sizeof(link_libs[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "-l%s", link_libs[i]);
		ret = search_library(&c, name, &found);
		if (ret == 0 && found)
			ret = add_host_file(&c, found);
		free(found);
		found = NULL;
	}
	/* The plugin is loaded into the linker: its closure too. */
	for (size_t i = 0; ret == 0 && i < c.b.n; i++)
		if (strstr(c.b.files[i].rel, "/liblto_plugin.so"))
			ret = toolchain_builder_add_closure(&c.b, c.b.files[i].host_path, base->sysroot);
	if (ret == 0)
		ret = toolchain_builder_finish(&c.b, link);
	if (ret == 0) {
		link->rustc = real;
		link->sysroot = strdup(base->sysroot);
		real = NULL;
		if (!link->sysroot)
			ret = -ENOMEM;
	}
	if (ret < 0)
		toolchain_release(link);
	free(real);
	link_collect_release(&c);
	return ret;
}

/* A program the driver runs by a bare name (gcc's "as"): the first one along the PATH the
 * queries (and a C job) run with, added at usr/bin/NAME, where the job's PATH finds it. */
static int add_program_on_path(struct link_collect *c, const char *name)
{
	static const char *const dirs[] = { "/usr/bin", "/bin" };
	char path[PATH_MAX], rel[PATH_MAX];
	size_t before = c->b.n;
	struct stat st;
	int ret;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dirs[i], name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0)
			continue;
		snprintf(rel, sizeof(rel), "usr/bin/%s", name);
		ret = toolchain_builder_add(&c->b, path, rel);
		if (ret == 0 && c->b.n > before)
			ret = toolchain_builder_add_closure(&c->b, c->b.files[before].host_path, NULL);
		return ret;
	}
	return -ENOENT;
}

/* Is the driver at REAL a clang (which compiles with itself, no cc1)? Its real name says so. */
static int driver_is_clang(const char *real)
{
	const char *slash = strrchr(real, '/');
	return strstr(slash ? slash + 1 : real, "clang") != NULL;
}

int toolchain_c_collect(const char *driver, const char *driver_rel, const char *compiler, struct toolchain *c)
{
	struct link_collect lc = { 0 };
	char *real = NULL, *as = NULL;
	int ret;

	memset(c, 0, sizeof(*c));
	if (strcmp(driver_rel, TOOLCHAIN_C_DRIVER) != 0 && strcmp(driver_rel, TOOLCHAIN_CXX_DRIVER) != 0)
		return -EINVAL;
	real = realpath(driver, NULL);
	if (!real)
		return -errno;
	ret = toolchain_builder_add(&lc.b, real, driver_rel);
	if (ret == 0)
		ret = toolchain_builder_add_closure(&lc.b, real, NULL);
	/* gcc runs cc1 or cc1plus from its own directories; clang is its own compiler proper. */
	if (ret == 0)
		ret = add_driver_program(&lc, real, compiler, !driver_is_clang(real), NULL);
	if (ret == 0)
		ret = ask_driver(real, "-print-prog-name=as", &as);
	if (ret == 0 && as[0] == '/') {
		size_t before = lc.b.n;
		ret = add_host_file(&lc, as);
		if (ret == 0 && lc.b.n > before)
			ret = toolchain_builder_add_closure(&lc.b, lc.b.files[before].host_path, NULL);
	} else if (ret == 0 && strchr(as, '/') == NULL && as[0]) {
		ret = add_program_on_path(&lc, as);
	} else if (ret == 0) {
		ret = -ENOENT;
	}
	if (ret == 0)
		ret = toolchain_builder_finish(&lc.b, c);
	if (ret == 0) {
		c->rustc = real;
		c->sysroot = strdup("");
		real = NULL;
		if (!c->sysroot)
			ret = -ENOMEM;
	}
	if (ret < 0)
		toolchain_release(c);
	free(as);
	free(real);
	link_collect_release(&lc);
	return ret;
}
