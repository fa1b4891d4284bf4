/* Shared statistics; see stats.h. */
#include "config.h"

#include "client/stats.h"
#include "base/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

/* stats.json holds a few dozen counters; anything larger was not written by a wrapper. */
#define STATS_FILE_MAX (1 << 20)

static const char *const counters[] = { "hits", "misses", "fallbacks", "errors", "compile_failures",
	"bytes_from_cache", "us_from_cache", "us_saved_estimate", "direct_hits", "published_list_hits" };

/* The cache directory exists and was checked (client/cache_dir.h) when C names one. */
static int lock_stats(const struct client_config *c)
{
	char path[PATH_MAX];
	int fd, ret;

	if (!c->cache_dir)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/stats.lock", c->cache_dir);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			ret = -errno;
			close(fd);
			return ret;
		}
	return fd;
}

/* Give OBJ every counter, and the not_cacheable and refused_hits objects, it lacks. */
static void complete_counters(json_t *obj)
{
	if (!json_is_object(json_object_get(obj, "not_cacheable")))
		json_object_set_new(obj, "not_cacheable", json_object());
	if (!json_is_object(json_object_get(obj, "refused_hits")))
		json_object_set_new(obj, "refused_hits", json_object());
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		if (!json_is_integer(json_object_get(obj, counters[i])))
			json_object_set_new(obj, counters[i], json_integer(0));
}

static json_t *load_stats(const struct client_config *c)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	json_t *root = NULL;
	snprintf(path, sizeof(path), "%s/stats.json", c->cache_dir);
	if (io_read_file_at(AT_FDCWD, path, O_NOFOLLOW | O_NONBLOCK, STATS_FILE_MAX, &text, &len) == 0)
		root = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(root)) {
		json_decref(root);
		root = json_object();
	}
	if (root && !json_is_object(json_object_get(root, "c")))
		json_object_set_new(root, "c", json_object());
	if (root) {
		complete_counters(root);
		complete_counters(json_object_get(root, "c"));
	}
	return root;
}

static int save_stats(const struct client_config *c, json_t *root)
{
	char path[PATH_MAX];
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	int ret;
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/stats.json", c->cache_dir);
	ret = io_replace_file(path, text, strlen(text), 0600);
	free(text);
	return ret;
}

static void add(json_t *root, const char *name, uint64_t n)
{
	json_t *v = json_object_get(root, name);
	json_object_set_new(root, name, json_integer(json_integer_value(v) + (json_int_t)n));
}

void stats_record(const struct client_config *c, const struct stats_delta *d)
{
	int fd;
	json_t *root;

	if (!c->cache_dir)
		return; /* said once when the directory was refused */
	fd = lock_stats(c);
	if (fd < 0) {
		fprintf(stderr, "cachepot: warning: statistics not recorded: %s\n", strerror(-fd));
		return;
	}
	root = load_stats(c);
	if (root) {
		json_t *into = d->c_compile ? json_object_get(root, "c") : root;
		add(into, "hits", d->hits);
		add(root, "direct_hits", d->direct_hits);
		add(root, "published_list_hits", d->published_list_hits);
		add(into, "misses", d->misses);
		add(into, "fallbacks", d->fallbacks);
		add(into, "errors", d->errors);
		add(into, "compile_failures", d->compile_failures);
		add(into, "bytes_from_cache", d->bytes_from_cache);
		add(into, "us_from_cache", d->us_from_cache);
		add(into, "us_saved_estimate", d->us_saved_estimate);
		if (!d->c_compile && d->not_cacheable >= 0)
			add(json_object_get(root, "not_cacheable"),
			    rustc_reason_name((enum rustc_reason)d->not_cacheable), 1);
		if (d->c_compile && d->c_not_cacheable > C_CACHEABLE)
			add(json_object_get(into, "not_cacheable"), c_reason_name((enum c_reason)d->c_not_cacheable), 1);
		if (d->refused_hit)
			add(json_object_get(into, "refused_hits"), d->refused_hit, 1);
		if (save_stats(c, root) < 0)
			fprintf(stderr, "cachepot: warning: statistics not saved in %s\n", c->cache_dir);
	}
	json_decref(root);
	close(fd);
}

static int no_cache_dir(void)
{
	fprintf(stderr, "cachepot: no usable cache directory, so no statistics are kept\n");
	return 1;
}

/* The C and C++ compiles, apart from rustc's. */
static void print_c_section(json_t *cs)
{
	const char *name;
	json_t *v;
	uint64_t total_nc = 0;

	json_object_foreach(json_object_get(cs, "not_cacheable"), name, v)
		total_nc += (uint64_t)json_integer_value(v);
#define N(k) ((long long)json_integer_value(json_object_get(cs, k)))
	printf("C/C++ compiles\n");
	printf("  Cache hits                   %lld\n", N("hits"));
	printf("  Cache misses (compiled)      %lld\n", N("misses"));
	printf("  Fallbacks to local compiler  %lld\n", N("fallbacks"));
	printf("    cache errors               %lld\n", N("errors"));
	printf("    failed sandbox compiles    %lld\n", N("compile_failures"));
	json_object_foreach(json_object_get(cs, "refused_hits"), name, v)
		printf("    refused: %-19s %lld\n", name, (long long)json_integer_value(v));
	printf("  Not cacheable                %llu\n", (unsigned long long)total_nc);
	json_object_foreach(json_object_get(cs, "not_cacheable"), name, v)
		printf("    %-26s %lld\n", name, (long long)json_integer_value(v));
	printf("  Bytes served from the cache  %lld\n", N("bytes_from_cache"));
#undef N
}

int stats_command_show(const struct client_config *c, int json)
{
	int fd = c->cache_dir ? lock_stats(c) : -ENOENT;
	json_t *root = fd >= 0 ? load_stats(c) : NULL;
	const char *name;
	json_t *v;
	uint64_t total_nc = 0;

	if (fd >= 0)
		close(fd);
	if (!c->cache_dir)
		return no_cache_dir();
	if (!root) {
		fprintf(stderr, "cachepot: cannot read statistics in %s\n", c->cache_dir);
		return 1;
	}
	if (json) {
		json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		fputc('\n', stdout);
		json_decref(root);
		return 0;
	}
	json_object_foreach(json_object_get(root, "not_cacheable"), name, v)
		total_nc += (uint64_t)json_integer_value(v);
#define N(k) ((long long)json_integer_value(json_object_get(root, k)))
	printf("Cache hits                     %lld\n", N("hits"));
	printf("  without a dep-info pass      %lld\n", N("direct_hits"));
	printf("    from a published list      %lld\n", N("published_list_hits"));
	printf("Cache misses (compiled)        %lld\n", N("misses"));
	printf("Fallbacks to local rustc       %lld\n", N("fallbacks"));
	printf("  cache errors                 %lld\n", N("errors"));
	printf("  failed sandbox compiles      %lld\n", N("compile_failures"));
	json_object_foreach(json_object_get(root, "refused_hits"), name, v)
		printf("  refused: %-21s %lld\n", name, (long long)json_integer_value(v));
	printf("Not cacheable                  %llu\n", (unsigned long long)total_nc);
	json_object_foreach(json_object_get(root, "not_cacheable"), name, v)
		printf("  %-28s %lld\n", name, (long long)json_integer_value(v));
	printf("Bytes served from the cache    %lld\n", N("bytes_from_cache"));
	printf("Time serving from the cache    %.3f s\n", N("us_from_cache") / 1e6);
#undef N
	print_c_section(json_object_get(root, "c"));
	printf("Statistics in                  %s\n", c->cache_dir);
	json_decref(root);
	return 0;
}

int stats_command_zero(const struct client_config *c)
{
	int fd;
	json_t *root;
	int ret;
	if (!c->cache_dir)
		return no_cache_dir();
	fd = lock_stats(c);
	if (fd < 0) {
		fprintf(stderr, "cachepot: %s: %s\n", c->cache_dir, strerror(-fd));
		return 1;
	}
	root = json_object();
	if (root)
		json_object_set_new(root, "c", json_object());
	if (root) {
		complete_counters(root);
		complete_counters(json_object_get(root, "c"));
	}
	ret = save_stats(c, root);
	json_decref(root);
	close(fd);
	if (ret == 0)
		printf("Statistics zeroed.\n");
	return ret == 0 ? 0 : 1;
}
