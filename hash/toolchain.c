/* Toolchain trees, their ids, their cache and their archives; see toolchain.h. */
#include "config.h"

#include "hash/toolchain.h"

#include "base/field_hasher.h"
#include "base/io.h"
#include "hash/pathmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

/* The most bytes of ldd output read. */
#define LDD_OUTPUT_MAX (256u << 10)

void toolchain_release(struct toolchain *tc)
{
	for (size_t i = 0; i < tc->n_files; i++) {
		free(tc->files[i].host_path);
		free(tc->files[i].rel);
	}
	free(tc->files);
	free(tc->rustc);
	free(tc->sysroot);
	memset(tc, 0, sizeof(*tc));
}

static unsigned normalise_mode(mode_t mode)
{
	return (mode & 0111) ? 0755 : 0644;
}

static int file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct toolchain_file *)a)->rel, ((const struct toolchain_file *)b)->rel);
}

/* The id over FILES (sorted by rel). */
static int compute_id(const struct toolchain_file *files, size_t n, char hex[DIGEST_HEX_SIZE])
{
	struct field_hasher h;
	unsigned char id[DIGEST_SIZE];
	int ret = field_hasher_init(&h, TOOLCHAIN_ID_TAG, sizeof(TOOLCHAIN_ID_TAG));

	for (size_t i = 0; ret == 0 && i < n; i++) {
		unsigned char mode[4] = { (unsigned char)files[i].mode, (unsigned char)(files[i].mode >> 8), 0, 0 };
		field_hasher_add(&h, 'p', files[i].rel, strlen(files[i].rel));
		field_hasher_add(&h, 'm', mode, sizeof(mode));
		field_hasher_add(&h, 'h', files[i].sha256, DIGEST_SIZE);
	}
	if (ret == 0)
		ret = field_hasher_finish(&h, id);
	if (ret == 0)
		digest_to_hex(id, hex);
	field_hasher_release(&h);
	return ret;
}

void toolchain_builder_release(struct toolchain_builder *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->files[i].host_path);
		free(l->files[i].rel);
	}
	free(l->files);
	memset(l, 0, sizeof(*l));
}

static int builder_has(const struct toolchain_builder *l, const char *rel)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->files[i].rel, rel) == 0)
			return 1;
	return 0;
}

int toolchain_builder_add(struct toolchain_builder *l, const char *host, const char *rel)
{
	struct toolchain_file *f;
	struct stat st;
	char *real;
	int fd, ret;

	if (builder_has(l, rel))
		return 0;
	if (l->n >= TOOLCHAIN_FILES_MAX)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct toolchain_file *grown = realloc(l->files, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		l->files = grown;
		l->cap = cap;
	}
	real = realpath(host, NULL);
	if (!real)
		return -errno;
	fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		free(real);
		return ret;
	}
	f = &l->files[l->n];
	memset(f, 0, sizeof(*f));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		goto fail;
	}
	ret = digest_fd(fd, f->sha256, &f->size);
	if (ret < 0)
		goto fail;
	f->mode = normalise_mode(st.st_mode);
	f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	f->ino = (uint64_t)st.st_ino;
	f->host_path = real;
	f->rel = strdup(rel);
	close(fd);
	if (!f->rel) {
		free(real);
		return -ENOMEM;
	}
	l->bytes += f->size;
	l->n++;
	return 0;
fail:
	close(fd);
	free(real);
	return ret;
}

/* Add the regular files (followed through symlinks) directly inside HOST_DIR as REL_DIR/<name>;
 * when SHARED_ONLY, only names containing ".so". */
static int add_dir_files(struct toolchain_builder *l, const char *host_dir, const char *rel_dir, int shared_only)
{
	DIR *d = opendir(host_dir);
	struct dirent *e;
	int ret = 0;

	if (!d)
		return -errno;
	while (ret == 0 && (e = readdir(d))) {
		char host[PATH_MAX], rel[PATH_MAX];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		if (shared_only && !strstr(e->d_name, ".so"))
			continue;
		if (snprintf(host, sizeof(host), "%s/%s", host_dir, e->d_name) >= (int)sizeof(host)
		    || snprintf(rel, sizeof(rel), "%s/%s", rel_dir, e->d_name) >= (int)sizeof(rel)) {
			ret = -ENAMETOOLONG;
			break;
		}
		if (stat(host, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		ret = toolchain_builder_add(l, host, rel);
	}
	closedir(d);
	return ret;
}

int toolchain_builder_add_closure(struct toolchain_builder *l, const char *file, const char *sysroot)
{
	char *argv[] = { "ldd", (char *)file, NULL };
	char *out = malloc(LDD_OUTPUT_MAX + 1), *line, *save = NULL;
	size_t len = 0;
	int ret;

	if (!out)
		return -ENOMEM;
	ret = io_run_capture(argv, environ, 1, out, LDD_OUTPUT_MAX + 1, &len);
	if (ret != 0) {
		ret = ret < 0 ? ret : -ENOEXEC;
		goto out;
	}
	for (line = strtok_r(out, "\n", &save); line && ret == 0; line = strtok_r(NULL, "\n", &save)) {
		char name[256], path[PATH_MAX], rel[PATH_MAX + 16];
		char *arrow = strstr(line, " => ");
		char *real, *slash;

		while (*line == '\t' || *line == ' ')
			line++;
		if (arrow) {
			size_t n = (size_t)(arrow - line);
			char *end;
			if (n == 0 || n >= sizeof(name) || arrow[4] != '/')
				continue;
			memcpy(name, line, n);
			name[n] = '\0';
			end = strstr(arrow + 4, " (");
			n = end ? (size_t)(end - (arrow + 4)) : strlen(arrow + 4);
			if (n >= sizeof(path))
				continue;
			memcpy(path, arrow + 4, n);
			path[n] = '\0';
		} else if (line[0] == '/') {
			/* the dynamic loader, named by its PT_INTERP path */
			size_t n = strcspn(line, " ");
			if (n >= sizeof(path))
				continue;
			memcpy(path, line, n);
			path[n] = '\0';
			slash = strrchr(path, '/');
			snprintf(rel, sizeof(rel), "usr/lib64/%s", slash + 1);
			ret = toolchain_builder_add(l, path, rel);
			continue;
		} else {
			continue;
		}
		real = realpath(path, NULL);
		if (!real)
			continue;
		if (sysroot && strncmp(real, sysroot, strlen(sysroot)) == 0 && real[strlen(sysroot)] == '/') {
			free(real);
			continue;
		}
		free(real);
		/* The library goes where the loader found it, in the directory of the path ldd
		 * printed, not of the file a symlink there leads to: Debian's libclang-cpp.so.14 is
		 * found in /lib/x86_64-linux-gnu, a link into /usr/lib/llvm-14/lib, where a loader
		 * without the host's ld.so.cache would never look. */
		ret = path_normalise(path, NULL, &real);
		if (ret < 0)
			break;
		slash = strrchr(real, '/');
		*slash = '\0';
		/* Debian merges /lib into /usr/lib; a library from /lib/x goes to usr/lib/x. */
		if (strncmp(real, "/usr/", 5) == 0)
			snprintf(rel, sizeof(rel), "%s/%s", real + 1, name);
		else
			snprintf(rel, sizeof(rel), "usr%s/%s", real, name);
		free(real);
		ret = toolchain_builder_add(l, path, rel);
	}
out:
	free(out);
	return ret;
}

int toolchain_builder_finish(struct toolchain_builder *l, struct toolchain *tc)
{
	int ret;

	if (l->bytes > TOOLCHAIN_BYTES_MAX)
		return -EFBIG;
	qsort(l->files, l->n, sizeof(*l->files), file_cmp);
	ret = compute_id(l->files, l->n, tc->id);
	if (ret < 0)
		return ret;
	tc->files = l->files;
	tc->n_files = l->n;
	memset(l, 0, sizeof(*l));
	return 0;
}

int toolchain_collect(const char *rustc, struct toolchain *tc)
{
	struct toolchain_builder l = { 0 };
	char path[PATH_MAX];
	char *real = NULL, *sysroot = NULL, *slash;
	struct stat st;
	DIR *d = NULL;
	struct dirent *e;
	size_t base_n;
	int ret;

	memset(tc, 0, sizeof(*tc));
	real = realpath(rustc, NULL);
	if (!real)
		return -errno;
	sysroot = strdup(real);
	if (!sysroot) {
		ret = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		slash = strrchr(sysroot, '/');
		if (!slash || slash == sysroot) {
			ret = -ENOENT;
			goto fail;
		}
		*slash = '\0';
	}
	snprintf(path, sizeof(path), "%s/lib/rustlib", sysroot);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ret = -ENOENT;
		goto fail;
	}
	ret = toolchain_builder_add(&l, real, "rust/bin/rustc");
	if (ret == 0) {
		snprintf(path, sizeof(path), "%s/lib", sysroot);
		ret = add_dir_files(&l, path, "rust/lib", 1);
	}
	if (ret < 0)
		goto fail;
	/* Every target's crates: lib/rustlib/<target>/lib/. */
	snprintf(path, sizeof(path), "%s/lib/rustlib", sysroot);
	d = opendir(path);
	while (d && ret == 0 && (e = readdir(d))) {
		char host[PATH_MAX], rel[PATH_MAX];
		if (e->d_name[0] == '.')
			continue;
		snprintf(host, sizeof(host), "%s/lib/rustlib/%s/lib", sysroot, e->d_name);
		if (stat(host, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		snprintf(rel, sizeof(rel), "rust/lib/rustlib/%s/lib", e->d_name);
		ret = add_dir_files(&l, host, rel, 0);
	}
	if (d)
		closedir(d);
	if (ret < 0)
		goto fail;
	/* The shared libraries rustc and the sysroot's .so files load. */
	base_n = l.n;
	for (size_t i = 0; i < base_n && ret == 0; i++) {
		const char *rel = l.files[i].rel;
		if (strcmp(rel, "rust/bin/rustc") == 0
		    || (strncmp(rel, "rust/lib/", 9) == 0 && !strchr(rel + 9, '/') && strstr(rel, ".so")
			&& l.files[i].size > 4096))
			ret = toolchain_builder_add_closure(&l, l.files[i].host_path, sysroot);
	}
	if (ret < 0)
		goto fail;
	ret = toolchain_builder_finish(&l, tc);
	if (ret < 0)
		goto fail;
	tc->rustc = real;
	tc->sysroot = sysroot;
	return 0;
fail:
	toolchain_builder_release(&l);
	free(real);
	free(sysroot);
	return ret;
}

/* --- the cache ------------------------------------------------------------------------------ */

static int cache_path(const char *cache_dir, const char *real, char *out, size_t outlen)
{
	unsigned char d[DIGEST_SIZE];
	char hex[DIGEST_HEX_SIZE];
	int ret = digest_buffer(real, strlen(real), d);
	if (ret < 0)
		return ret;
	digest_to_hex(d, hex);
	if (snprintf(out, outlen, "%s/toolchain-%s.json", cache_dir, hex) >= (int)outlen)
		return -ENAMETOOLONG;
	return 0;
}

json_t *toolchain_files_to_json(const struct toolchain *tc)
{
	json_t *files = json_array();
	for (size_t i = 0; files && i < tc->n_files; i++) {
		const struct toolchain_file *f = &tc->files[i];
		char hex[DIGEST_HEX_SIZE];
		digest_to_hex(f->sha256, hex);
		if (json_array_append_new(files, json_pack("{s:s,s:s,s:i,s:I,s:s,s:I,s:I}", "host",
							   f->host_path, "rel", f->rel, "mode", (int)f->mode,
							   "size", (json_int_t)f->size, "sha256", hex, "mtime_ns",
							   (json_int_t)f->mtime_ns, "ino", (json_int_t)f->ino)) < 0) {
			json_decref(files);
			return NULL;
		}
	}
	return files;
}

int toolchain_files_from_json(const json_t *files, struct toolchain *tc)
{
	const json_t *f;
	size_t i;

	if (!json_is_array(files) || json_array_size(files) > TOOLCHAIN_FILES_MAX)
		return -EINVAL;
	tc->files = calloc(json_array_size(files) + 1, sizeof(*tc->files));
	if (!tc->files)
		return -ENOMEM;
	json_array_foreach(files, i, f) {
		struct toolchain_file *tf = &tc->files[i];
		const char *host = json_string_value(json_object_get(f, "host"));
		const char *rel = json_string_value(json_object_get(f, "rel"));
		const char *hex = json_string_value(json_object_get(f, "sha256"));
		json_int_t mode = json_integer_value(json_object_get(f, "mode"));
		if (!host || !rel || !hex || digest_from_hex(hex, tf->sha256) < 0 || (mode != 0644 && mode != 0755))
			return -EINVAL;
		tf->host_path = strdup(host);
		tf->rel = strdup(rel);
		tf->mode = (unsigned)mode;
		tf->size = (uint64_t)json_integer_value(json_object_get(f, "size"));
		tf->mtime_ns = (int64_t)json_integer_value(json_object_get(f, "mtime_ns"));
		tf->ino = (uint64_t)json_integer_value(json_object_get(f, "ino"));
		tc->n_files = i + 1;
		if (!tf->host_path || !tf->rel)
			return -ENOMEM;
	}
	return 0;
}

/* The cache file of a tree of TOOLCHAIN_FILES_MAX files is well under this. */
#define CACHE_FILE_MAX (64u << 20)

static int cache_load(const char *file, const char *real, const struct stat *st, struct toolchain *tc)
{
	json_t *root = NULL;
	char *text = NULL;
	size_t len;
	int ret = -ENOENT;

	memset(tc, 0, sizeof(*tc));
	/* Never through a symlink: the list names the host files that get uploaded. */
	if (io_read_file_at(AT_FDCWD, file, O_NOFOLLOW | O_NONBLOCK, CACHE_FILE_MAX, &text, &len) == 0)
		root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	if (!root)
		return -ENOENT;
	if (json_integer_value(json_object_get(root, "size")) != (json_int_t)st->st_size
	    || json_integer_value(json_object_get(root, "mtime_ns"))
		       != (json_int_t)(st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec)
	    || json_integer_value(json_object_get(root, "ino")) != (json_int_t)st->st_ino
	    || !json_is_string(json_object_get(root, "rustc"))
	    || strcmp(json_string_value(json_object_get(root, "rustc")), real) != 0
	    || !digest_hex_valid(json_string_value(json_object_get(root, "id")) ?: "")
	    || !json_is_string(json_object_get(root, "sysroot")))
		goto out;
	ret = toolchain_files_from_json(json_object_get(root, "files"), tc);
	if (ret < 0) {
		ret = ret == -ENOMEM ? ret : -ENOENT;
		goto out;
	}
	/* A file replaced or rewritten since it was hashed invalidates the whole entry. */
	for (size_t i = 0; i < tc->n_files; i++) {
		const struct toolchain_file *f = &tc->files[i];
		struct stat fst;
		if (stat(f->host_path, &fst) < 0 || (uint64_t)fst.st_size != f->size
		    || fst.st_mtim.tv_sec * 1000000000LL + fst.st_mtim.tv_nsec != f->mtime_ns
		    || (uint64_t)fst.st_ino != f->ino) {
			ret = -ENOENT;
			goto out;
		}
	}
	memcpy(tc->id, json_string_value(json_object_get(root, "id")), DIGEST_HEX_SIZE);
	tc->rustc = strdup(real);
	tc->sysroot = strdup(json_string_value(json_object_get(root, "sysroot")));
	ret = (tc->rustc && tc->sysroot) ? 0 : -ENOMEM;
out:
	json_decref(root);
	if (ret < 0)
		toolchain_release(tc);
	return ret;
}

static void cache_store(const char *file, const struct stat *st, const struct toolchain *tc)
{
	char *text = NULL;
	json_t *root = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I}", "rustc", tc->rustc, "sysroot", tc->sysroot,
				 "id", tc->id, "size", (json_int_t)st->st_size, "mtime_ns",
				 (json_int_t)(st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec),
				 "ino", (json_int_t)st->st_ino);
	json_t *files = toolchain_files_to_json(tc);

	if (!root || !files)
		goto out;
	json_object_set(root, "files", files);
	text = json_dumps(root, JSON_COMPACT);
	/* Replaced whole: concurrent wrappers never read half a file. When it fails the toolchain
	 * is only not remembered. */
	if (text && io_replace_file(file, text, strlen(text), 0600) < 0)
		goto out;
out:
	free(text);
	json_decref(files);
	json_decref(root);
}

/* The tree COLLECT(ARG, real path) gathers for the host file PATH, answered from the cache
 * entry named after PREFIX (may be NULL) and PATH's real path when the entry is still valid. */
static int cached_collect(const char *path, const char *prefix, const char *cache_dir,
			  int (*collect)(const void *arg, const char *real, struct toolchain *tc), const void *arg,
			  struct toolchain *tc)
{
	char file[PATH_MAX], *name = NULL;
	struct stat st;
	char *real = realpath(path, NULL);
	int ret;

	memset(tc, 0, sizeof(*tc));
	if (!real)
		return -errno;
	if (stat(real, &st) < 0) {
		ret = -errno;
		free(real);
		return ret;
	}
	ret = prefix ? (asprintf(&name, "%s\n%s", prefix, real) < 0 ? -ENOMEM : 0) : 0;
	if (ret == 0)
		ret = cache_dir ? cache_path(cache_dir, name ? name : real, file, sizeof(file)) : -ENOENT;
	free(name);
	if (ret == 0 && cache_load(file, real, &st, tc) == 0) {
		free(real);
		return 0;
	}
	ret = collect(arg, real, tc);
	/* When the cache cannot be written the answer is still correct, only not remembered. */
	if (ret == 0 && cache_dir && path_mkdir_parents(cache_dir, 0700) == 0)
		cache_store(file, &st, tc);
	free(real);
	return ret;
}

static int collect_base(const void *arg, const char *real, struct toolchain *tc)
{
	(void)arg;
	return toolchain_collect(real, tc);
}

static int collect_link(const void *arg, const char *real, struct toolchain *tc)
{
	return toolchain_link_collect(arg, real, tc);
}

/* What a C part is collected for, besides the driver. */
struct c_part_request {
	const char *driver_rel;
	const char *compiler;
};

static int collect_c(const void *arg, const char *real, struct toolchain *tc)
{
	const struct c_part_request *req = arg;
	return toolchain_c_collect(real, req->driver_rel, req->compiler, tc);
}

int toolchain_get(const char *rustc, const char *cache_dir, struct toolchain *tc)
{
	return cached_collect(rustc, NULL, cache_dir, collect_base, NULL, tc);
}

int toolchain_link_get(const struct toolchain *base, const char *driver, const char *cache_dir,
		       struct toolchain *link)
{
	char prefix[8 + DIGEST_HEX_SIZE];

	/* One entry per base tree and driver: the part is collected with the base's rustc. */
	snprintf(prefix, sizeof(prefix), "link\n%s", base->id);
	return cached_collect(driver, prefix, cache_dir, collect_link, base, link);
}

int toolchain_c_get(const char *driver, const char *driver_rel, const char *compiler, const char *cache_dir,
		    struct toolchain *c)
{
	const struct c_part_request req = { driver_rel, compiler };
	char prefix[256];

	/* One entry per driver, name and compiler proper. */
	if (snprintf(prefix, sizeof(prefix), "c\n%s\n%s", driver_rel, compiler) >= (int)sizeof(prefix))
		return -ENAMETOOLONG;
	return cached_collect(driver, prefix, cache_dir, collect_c, &req, c);
}

/* --- the id of an unpacked tree ------------------------------------------------------------- */

static int walk_tree(int tree_fd, const char *prefix, struct toolchain_builder *l)
{
	int fd = openat(tree_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	int ret = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while (ret == 0 && (e = readdir(d))) {
		char rel[PATH_MAX];
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", e->d_name) >= (int)sizeof(rel)) {
			ret = -ENAMETOOLONG;
			break;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			size_t before = l->n;
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				ret = -errno;
				break;
			}
			ret = walk_tree(sub, rel, l);
			close(sub);
			/* The id covers files only, so the directories it covers are their parents: a
			 * directory without a file beneath it would be seen by every sandbox and named
			 * by no id. */
			if (ret == 0 && l->n == before)
				ret = -EINVAL;
		} else if (S_ISREG(st.st_mode)) {
			struct toolchain_file *f;
			if (l->n >= TOOLCHAIN_FILES_MAX) {
				ret = -EINVAL;
				break;
			}
			if (l->n == l->cap) {
				size_t cap = l->cap ? 2 * l->cap : 256;
				struct toolchain_file *grown = realloc(l->files, cap * sizeof(*grown));
				if (!grown) {
					ret = -ENOMEM;
					break;
				}
				l->files = grown;
				l->cap = cap;
			}
			f = &l->files[l->n];
			memset(f, 0, sizeof(*f));
			ret = digest_file_at(dirfd(d), e->d_name, f->sha256, &f->size);
			if (ret < 0)
				break;
			f->mode = normalise_mode(st.st_mode);
			f->rel = strdup(rel);
			if (!f->rel) {
				ret = -ENOMEM;
				break;
			}
			l->n++;
			l->bytes += f->size;
			if (l->bytes > TOOLCHAIN_BYTES_MAX)
				ret = -EINVAL;
		} else {
			ret = -EINVAL; /* symlinks, devices, fifos, sockets have no place in a toolchain */
		}
	}
	closedir(d);
	return ret;
}

int toolchain_id_of_tree(int dirfd, char hex[DIGEST_HEX_SIZE])
{
	struct toolchain_builder l = { 0 };
	int ret = walk_tree(dirfd, "", &l);
	if (ret == 0 && l.n == 0)
		ret = -EINVAL; /* no file: no toolchain */
	if (ret == 0) {
		qsort(l.files, l.n, sizeof(*l.files), file_cmp);
		ret = compute_id(l.files, l.n, hex);
	}
	toolchain_builder_release(&l);
	return ret;
}

