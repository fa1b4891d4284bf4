/* store-tool: drives a real store for the fs/ integration tests.
 *
 *   store-tool put STORE FILE                      put a blob, print its hash
 *   store-tool publish STORE KEY NAME=FILE[:MODE]... publish one key (MODE octal, default 644);
 *                                                  prints 0 published, 1 different, 2 same;
 *                                                  its stderr is empty, or the file
 *                                                  $STORE_TOOL_STDERR names
 *   store-tool publish-loop STORE SEED             publish random keys until killed
 *   store-tool crash-loop STORE KILLS MAX_MS [GC_MAX]
 *                                                  fork publish loops, SIGKILL each at random;
 *                                                  with GC_MAX each collects the store to
 *                                                  GC_MAX bytes after every 3 keys
 *   store-tool gc STORE MAX_SIZE [AGE_SHIFT]       one collection (fs/gc.h), as if AGE_SHIFT s
 *                                                  later; prints what it removed
 *   store-tool check STORE                         every indexed key complete: signature good, every
 *                                                  named blob present and its bytes hash right;
 *                                                  prints the number of keys
 *   store-tool race STORE MOUNT N                  publish N keys while 16 threads read them
 *                                                  through MOUNT; fails on any partial key
 *   store-tool erofs OP PATH [PATH2]               do OP through the mount, succeed iff it fails
 *                                                  with EROFS (OP: write rdwr trunc create unlink
 *                                                  rename chmod chown truncate utimes setxattr
 *                                                  removexattr mkdir rmdir symlink link mknod)
 *   store-tool read-errno FILE                     print the errno name of open+read of FILE (OK)
 *   store-tool dirent-ino DIR NAME                 print the d_ino readdir of DIR gives NAME
 *   store-tool export STORE DIR                    lay STORE out for a static HTTP server:
 *                                                  DIR/v1/manifests/<key>, DIR/v1/blobs/<sha256>
 *   store-tool fsck [-q] STORE                     the fsck command (fs/fsck.h)
 *   store-tool publish-acked STORE SEED ACKS [GC_MAX]
 *                                                  publish random keys until an error; append
 *                                                  each key to the file ACKS once
 *                                                  store_publish has returned 0; with GC_MAX,
 *                                                  collect to GC_MAX bytes after every key,
 *                                                  between a line of 64 'G' (before) and one of
 *                                                  64 'g' (after it returned)
 *   store-tool check-acked STORE ACKS              every key in ACKS is in the index, complete;
 *                                                  a key before a 'G' line may be gone (evicted)
 *                                                  but is complete if there; prints the keys
 *                                                  checked, and "N evicted" on stderr if any
 *   store-tool synth STORE N BYTES [FIRST]          publish N synthetic keys (seeds FIRST..), each
 *                                                  one output "out" of BYTES bytes of its own;
 *                                                  key i last used i hours after the first
 *                                                  (use record and the output's atime), all in
 *                                                  the past; prints the keys, oldest first
 *   store-tool synth --bulk STORE N BYTES [FIRST]   the same keys and records, written in batches
 *                                                  of 1024 without a sync each, then synced once
 *                                                  (store_bulk_*): a million keys in minutes
 *   store-tool publish-bench STORE K THREADS [BYTES]
 *                                                  THREADS threads each publish K random keys
 *                                                  (one output of BYTES bytes, default 16)
 *                                                  through the durable path; prints keys/s
 *   store-tool open-time STORE                     open STORE as a reader (cachepot-fs does) and
 *                                                  close it; prints the microseconds of the open
 *   store-tool evict-race STORE N                  evict N synthetic keys (synth) one by one
 *                                                  while 8 threads of a reader instance look
 *                                                  keys up and read their blobs: fails if a
 *                                                  manifest is found after its blob is gone,
 *                                                  or a blob open before its eviction reads
 *                                                  other bytes
 *   store-tool godown PATH                         shut the file system of PATH down as a power
 *                                                  cut would (EXT4_IOC_SHUTDOWN, no log flush)
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "base/io.h"
#include "fs/fsck.h"
#include "fs/manifest.h"
#include "fs/gc.h"
#include "fs/store.h"
#include "hash/digest.h"

#define READERS 16

static int die(const char *what, int err)
{
	fprintf(stderr, "store-tool: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static void fill_hex(char hex[65])
{
	unsigned char r[32];
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		abort();
	digest_to_hex(r, hex);
}

static int cmd_put(int argc, char **argv)
{
	struct store *s;
	unsigned char sha[32];
	char hex[DIGEST_HEX_SIZE];
	if (argc != 4)
		return die("usage: put STORE FILE", EINVAL);
	int fd = open(argv[3], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return die(argv[3], errno);
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0)
		return die("store_open", ret);
	ret = store_put_blob_fd(s, fd, NULL, sha);
	close(fd);
	store_close(s);
	if (ret < 0)
		return die("put", ret);
	digest_to_hex(sha, hex);
	printf("%s\n", hex);
	return 0;
}

static int cmd_publish(int argc, char **argv)
{
	struct store *s;
	struct manifest m;
	if (argc < 4)
		return die("usage: publish STORE KEY NAME=FILE[:MODE]...", EINVAL);
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0)
		return die("store_open", ret);
	manifest_init(&m);
	snprintf(m.key, sizeof(m.key), "%s", argv[3]);
	memset(m.toolchain, 'a', 64);
	m.outputs = calloc((size_t)argc, sizeof(*m.outputs));
	m.worker = strdup("store-tool");
	m.created = time(NULL);
	for (int i = 4; i < argc && ret == 0; i++) {
		char *spec = strdup(argv[i]), *eq = strchr(spec, '='), *colon;
		if (!eq) {
			free(spec);
			ret = -EINVAL;
			break;
		}
		*eq = 0;
		struct manifest_output *o = &m.outputs[m.n_outputs++];
		o->name = strdup(spec);
		o->mode = 0644;
		colon = strrchr(eq + 1, ':');
		if (colon) {
			*colon = 0;
			o->mode = (unsigned)strtoul(colon + 1, NULL, 8);
		}
		int fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			ret = -errno;
		} else {
			o->size = (uint64_t)st.st_size;
			ret = store_put_blob_fd(s, fd, NULL, o->sha256);
		}
		if (fd >= 0)
			close(fd);
		free(spec);
	}
	/* The recorded stderr: empty, or the file STORE_TOOL_STDERR names. */
	const char *stderr_file = getenv("STORE_TOOL_STDERR");
	char *err_text = NULL;
	size_t err_len = 0;
	if (ret == 0 && stderr_file)
		ret = io_read_file_at(AT_FDCWD, stderr_file, 0, 1u << 20, &err_text, &err_len);
	if (ret == 0)
		ret = store_put_blob_buffer(s, "", 0, m.stdout_sha256);
	if (ret == 0)
		ret = store_put_blob_buffer(s, err_text ? err_text : "", err_len, m.stderr_sha256);
	m.stderr_size = err_len;
	free(err_text);
	if (ret == 0)
		ret = store_publish(s, &m);
	manifest_release(&m);
	store_close(s);
	if (ret < 0)
		return die("publish", ret);
	printf("%d\n", ret);
	return 0;
}

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(xorshift(&st) >> 32);
}

/* The blobs of one key: put one by one, or (TOGETHER) begun and committed together. */
struct blob_set {
	int together;
	size_t n;
	struct store_blob_writer *writers[8];
	unsigned char *dest[8];
};

static int blob_set_put(struct store *s, struct blob_set *set, const void *data, size_t len,
                        unsigned char sha[32])
{
	if (!set->together || set->n == 8)
		return store_put_blob_buffer(s, data, len, sha);
	struct store_blob_writer *w;
	int ret = store_blob_begin(s, &w);
	if (ret == 0 && len && (ret = store_blob_write(w, data, len)) < 0)
		store_blob_abort(w);
	if (ret == 0) {
		set->writers[set->n] = w;
		set->dest[set->n++] = sha;
	}
	return ret;
}

/* Commit what SET holds when RET is 0 (else abort it); the digests go where they were asked. */
static int blob_set_commit(struct blob_set *set, int ret)
{
	unsigned char sha[8][32];
	if (ret < 0) {
		for (size_t i = 0; i < set->n; i++)
			store_blob_abort(set->writers[i]);
		return ret;
	}
	if (set->n == 0)
		return 0;
	if ((ret = store_blob_commit_many(set->writers, set->n, sha)) == 0)
		for (size_t i = 0; i < set->n; i++)
			memcpy(set->dest[i], sha[i], 32);
	return ret;
}

#define GC_START_MARK 'G'   /* ACK_FD lines around a collection (check-acked) */
#define GC_END_MARK 'g'

static int write_mark(int fd, char mark)
{
	char line[65];
	if (fd < 0)
		return 0;
	memset(line, mark, 64);
	line[64] = '\n';
	return io_write_all(fd, line, 65) < 0 ? -errno : 0;
}

/* Publish random keys forever: the crash test kills this at random points. READY_FD (or -1)
 * gets one byte once the store is open; ACK_FD (or -1) a line with each key once it is
 * published (store_publish returned 0), so a test can tell what was promised durable. With
 * GC_MAX, a collection to GC_MAX bytes after every GC_EVERY keys, marked in ACK_FD before it
 * starts and after it returns. */
static int publish_loop_acked(const char *dir, uint64_t seed, int ready_fd, int ack_fd,
                              uint64_t gc_max, unsigned gc_every)
{
	unsigned published = 0;
	struct store *s;
	uint64_t st = seed * 2654435761u + 7;
	int ret = store_open(dir, STORE_CREATE, &s);
	if (ret < 0)
		return die("store_open", ret);
	if (ready_fd >= 0 && write(ready_fd, "r", 1) != 1)
		return die("ready", errno);
	unsigned char *buf = malloc(1 << 17);
	for (;;) {
		struct manifest m;
		manifest_init(&m);
		fill_hex(m.key);
		memset(m.toolchain, 'b', 64);
		size_t n = 1 + xorshift(&st) % 3;
		/* Half the keys commit their blobs one by one, half together as the daemon does
		 * (store_blob_commit_many), so the kills and cuts land in both. */
		struct blob_set set = { .together = (int)(xorshift(&st) & 1) };
		m.outputs = calloc(n, sizeof(*m.outputs));
		for (size_t i = 0; i < n && ret == 0; i++) {
			struct manifest_output *o = &m.outputs[m.n_outputs++];
			o->name = malloc(32);
			snprintf(o->name, 32, "out%zu.rlib", i);
			o->mode = 0644;
			o->size = xorshift(&st) % (1 << 17);
			fill_pattern(buf, o->size, xorshift(&st));
			ret = blob_set_put(s, &set, buf, o->size, o->sha256);
		}
		if (ret == 0)
			ret = blob_set_put(s, &set, "out", 3, m.stdout_sha256);
		m.stdout_size = 3;
		if (ret == 0)
			ret = blob_set_put(s, &set, "", 0, m.stderr_sha256);
		ret = blob_set_commit(&set, ret);
		if (ret == 0)
			ret = store_publish(s, &m);
		if (ret == 0 && ack_fd >= 0) {
			char line[66];
			memcpy(line, m.key, 64);
			line[64] = '\n';
			if (io_write_all(ack_fd, line, 65) < 0)
				ret = -errno;
		}
		manifest_release(&m);
		if (ret < 0)
			break;
		ret = 0;
		if (gc_max && ++published % gc_every == 0) {
			/* a collection to GC_MAX bytes: evictions (batch, then unlinks) for the killer
			 * to land in, and the sweep of files a killed collection left */
			struct gc_options go = { .max_size = gc_max };
			struct gc_report gr;
			char err[256];
			if ((ret = write_mark(ack_fd, GC_START_MARK)) < 0)
				break;
			if ((ret = gc_run(s, &go, &gr, err, sizeof(err))) < 0) {
				fprintf(stderr, "store-tool: gc: %s\n", err);
				break;
			}
			if ((ret = write_mark(ack_fd, GC_END_MARK)) < 0)
				break;
		}
	}
	free(buf);
	store_close(s);
	return die("publish-loop", ret);
}

static int publish_loop(const char *dir, uint64_t seed, int ready_fd)
{
	return publish_loop_acked(dir, seed, ready_fd, -1, 0, 1);
}

static int cmd_publish_acked(int argc, char **argv)
{
	if (argc != 5 && argc != 6)
		return die("usage: publish-acked STORE SEED ACKS [GC_MAX]", EINVAL);
	int fd = open(argv[4], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return die(argv[4], errno);
	/* The loop ends with the file system's first error (the test cuts it): that is the
	 * expected way out, reported on stderr all the same. */
	int ret = publish_loop_acked(argv[2], strtoull(argv[3], NULL, 10), -1, fd,
				     argc == 6 ? strtoull(argv[5], NULL, 10) : 0, 1);
	close(fd);
	return ret;
}

/* EXT4_IOC_SHUTDOWN (the same number as XFS_IOC_GOINGDOWN) and its "no log flush" flag:
 * from here the file system refuses every write and what its journal had not committed is
 * lost, as at a power cut; fsync'd data survives. */
#define GOINGDOWN_IOC _IOR('X', 125, uint32_t)
#define GOINGDOWN_NOLOGFLUSH 2u

static int cmd_godown(int argc, char **argv)
{
	if (argc != 3)
		return die("usage: godown PATH", EINVAL);
	int fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return die(argv[2], errno);
	uint32_t flags = GOINGDOWN_NOLOGFLUSH;
	int ret = ioctl(fd, GOINGDOWN_IOC, &flags) < 0 ? -errno : 0;
	close(fd);
	return ret < 0 ? die("shutdown ioctl", ret) : 0;
}

static int cmd_publish_loop(int argc, char **argv)
{
	if (argc != 4)
		return die("usage: publish-loop STORE SEED", EINVAL);
	return publish_loop(argv[2], strtoull(argv[3], NULL, 10), -1);
}

/* Fork publishers and SIGKILL each at a random point: one in eight during store start-up, the
 * rest 0..MAX_MS after the store is open (mid-blob, mid-rename, mid-index-write). Forking
 * without exec keeps the start-up short, so most kills land in publishing. */
static int cmd_crash_loop(int argc, char **argv)
{
	if (argc != 5 && argc != 6)
		return die("usage: crash-loop STORE KILLS MAX_MS [GC_MAX]", EINVAL);
	uint64_t gc_max = argc == 6 ? strtoull(argv[5], NULL, 10) : 0;
	unsigned kills = (unsigned)strtoul(argv[3], NULL, 10);
	unsigned max_ms = (unsigned)strtoul(argv[4], NULL, 10);
	unsigned killed = 0, during_startup = 0, died = 0;
	uint64_t st = (uint64_t)time(NULL) * 31 + (uint64_t)getpid();
	fflush(NULL);
	for (unsigned i = 0; i < kills; i++) {
		int ready[2];
		if (pipe2(ready, O_CLOEXEC) < 0)
			return die("pipe", errno);
		pid_t pid = fork();
		if (pid < 0)
			return die("fork", errno);
		if (pid == 0) {
			close(ready[0]);
			_exit(publish_loop_acked(argv[2], xorshift(&st) + i, ready[1], -1, gc_max, 3));
		}
		close(ready[1]);
		int early = xorshift(&st) % 8 == 0;
		if (early) {
			usleep((useconds_t)(xorshift(&st) % 30000));
		} else {
			char c;
			if (read(ready[0], &c, 1) != 1)
				died++;
			usleep((useconds_t)(xorshift(&st) % (max_ms * 1000u + 1)));
		}
		close(ready[0]);
		int status;
		if (kill(pid, SIGKILL) == 0)
			killed++;
		if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			if (early)
				during_startup++;
		} else {
			died++;
		}
	}
	printf("kills=%u startup-kills=%u publishers-that-died-otherwise=%u\n", killed,
	       during_startup, died);
	return died ? 1 : 0;
}

struct check_ctx { struct store *store; unsigned long keys, bad; };

static int check_blob(struct check_ctx *c, const char *key, const unsigned char sha[32], uint64_t size)
{
	unsigned char d[32];
	uint64_t got = 0;
	int fd = store_open_blob_unused(c->store, sha);
	if (fd < 0 || digest_fd(fd, d, &got) < 0 || got != size || memcmp(d, sha, 32) != 0) {
		fprintf(stderr, "store-tool: key %s is incomplete or damaged\n", key);
		c->bad++;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static int check_key(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct check_ctx *c = ctx;
	struct manifest m;
	c->keys++;
	if (store_parse_manifest(c->store, text, len, &m) < 0 || strcmp(m.key, key_hex) != 0) {
		fprintf(stderr, "store-tool: key %s: bad manifest\n", key_hex);
		c->bad++;
		return 0;
	}
	for (size_t i = 0; i < m.n_outputs; i++)
		check_blob(c, key_hex, m.outputs[i].sha256, m.outputs[i].size);
	check_blob(c, key_hex, m.stdout_sha256, m.stdout_size);
	check_blob(c, key_hex, m.stderr_sha256, m.stderr_size);
	manifest_release(&m);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	struct check_ctx c = { NULL, 0, 0 };
	if (argc != 3)
		return die("usage: check STORE", EINVAL);
	int ret = store_open(argv[2], STORE_READ_ONLY, &c.store);
	if (ret < 0)
		return die("store_open", ret);
	ret = store_foreach_manifest(c.store, check_key, &c);
	store_close(c.store);
	if (ret < 0)
		return die("check", ret);
	printf("%lu\n", c.keys);
	return c.bad ? 1 : 0;
}

/* Every key listed in ACKS (one hex key a line) has a manifest in the index, and check_key
 * finds it complete; but a key listed before a collection's start mark (publish-acked with
 * GC_MAX) may have been evicted since: if absent, it is counted as evicted, if present it
 * must be complete. Prints the number of keys checked. */
static int cmd_check_acked(int argc, char **argv)
{
	struct check_ctx c = { NULL, 0, 0 };
	char *acks = NULL;
	size_t len = 0;
	if (argc != 4)
		return die("usage: check-acked STORE ACKS", EINVAL);
	int ret = io_read_file_at(AT_FDCWD, argv[3], 0, 64u << 20, &acks, &len);
	if (ret < 0)
		return die(argv[3], ret);
	ret = store_open(argv[2], STORE_READ_ONLY, &c.store);
	if (ret < 0) {
		free(acks);
		return die("store_open", ret);
	}
	size_t last_gc = 0;   /* end of the last start mark: keys before it may be evicted */
	unsigned long evicted = 0;
	for (size_t off = 0; off + 65 <= len; off += 65)
		if (acks[off] == GC_START_MARK)
			last_gc = off + 65;
	for (size_t off = 0; off + 65 <= len; off += 65) {
		char key[65], *text = NULL;
		size_t tlen = 0;
		if (acks[off] == GC_START_MARK || acks[off] == GC_END_MARK)
			continue;
		memcpy(key, acks + off, 64);
		key[64] = '\0';
		ret = store_get_manifest(c.store, key, &text, &tlen);
		if (ret == -ENOENT && off < last_gc) {
			c.keys++;
			evicted++;
			continue;
		}
		if (ret < 0) {
			fprintf(stderr, "store-tool: published key %s is not in the index (%s)\n", key,
				strerror(-ret));
			c.keys++;
			c.bad++;
			continue;
		}
		check_key(&c, key, text, tlen);
		free(text);
	}
	if (len % 65 != 0)
		fprintf(stderr, "store-tool: %s ends with a partial line (ignored)\n", argv[3]);
	if (evicted)
		fprintf(stderr, "store-tool: %lu evicted\n", evicted);
	store_close(c.store);
	free(acks);
	printf("%lu\n", c.keys);
	return c.bad ? 1 : 0;
}

/* ---- race: readers through the mount while a publisher writes the store ---- */

struct race {
	const char *mount;
	unsigned n;
	atomic_uint published;          /* keys 0..published-1 are published */
	atomic_int done;
	atomic_ulong whole, partial, misses, early;
};

static void race_key(unsigned i, char hex[65])
{
	unsigned char d[32];
	char seed[32];
	snprintf(seed, sizeof(seed), "race-%u", i);
	if (digest_buffer(seed, strlen(seed), d) < 0)
		abort();
	digest_to_hex(d, hex);
}

static unsigned race_outputs(unsigned i) { return 1 + i % 4; }
static size_t race_size(unsigned i, unsigned j) { return (i * 7919u + j * 104729u) % 200000u; }

static int race_publish_one(struct store *s, unsigned i, unsigned char *buf)
{
	struct manifest m;
	int ret = 0;
	manifest_init(&m);
	race_key(i, m.key);
	memset(m.toolchain, 'c', 64);
	m.outputs = calloc(race_outputs(i), sizeof(*m.outputs));
	for (unsigned j = 0; j < race_outputs(i) && ret == 0; j++) {
		struct manifest_output *o = &m.outputs[m.n_outputs++];
		o->name = malloc(32);
		snprintf(o->name, 32, "out-%u", j);
		o->mode = j % 2 ? 0755 : 0644;
		o->size = race_size(i, j);
		fill_pattern(buf, o->size, i * 1000u + j);
		ret = store_put_blob_buffer(s, buf, o->size, o->sha256);
	}
	if (ret == 0)
		ret = store_put_blob_buffer(s, "", 0, m.stdout_sha256);
	if (ret == 0)
		ret = store_put_blob_buffer(s, "", 0, m.stderr_sha256);
	if (ret == 0)
		ret = store_publish(s, &m);
	manifest_release(&m);
	return ret;
}

/* 1 whole, 0 absent, -1 partial or wrong. */
static int race_read_key(struct race *r, unsigned i, unsigned char *want, unsigned char *got)
{
	char key[65], path[512];
	struct stat st;
	race_key(i, key);
	snprintf(path, sizeof(path), "%s/ac/%s", r->mount, key);
	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	for (unsigned j = 0; j < race_outputs(i); j++) {
		size_t size = race_size(i, j);
		snprintf(path, sizeof(path), "%s/ac/%s/out-%u", r->mount, key, j);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		size_t have = 0;
		ssize_t n;
		while (have <= size && (n = read(fd, got + have, size + 1 - have)) > 0)
			have += (size_t)n;
		close(fd);
		fill_pattern(want, size, i * 1000u + j);
		if (have != size || memcmp(want, got, size) != 0)
			return -1;
	}
	snprintf(path, sizeof(path), "%s/ac/%s/.manifest", r->mount, key);
	return stat(path, &st) == 0 && st.st_size > 0 ? 1 : -1;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	unsigned char *want = malloc(200001), *got = malloc(200002);
	uint64_t st = (uint64_t)(uintptr_t)&st ^ (uint64_t)time(NULL);
	while (!atomic_load(&r->done)) {
		/* Half the time a key near the publishing edge, where a half-written key would show. */
		unsigned p = atomic_load(&r->published);
		unsigned lo = xorshift(&st) % 2 && p > 4 ? p - 4 : 0;
		unsigned hi = p + 3 < r->n ? p + 3 : r->n;
		unsigned i = lo + (unsigned)(xorshift(&st) % (hi - lo));
		int res = race_read_key(r, i, want, got);
		if (res == 1)
			atomic_fetch_add(&r->whole, 1);
		else if (res == 0 && i < p)
			atomic_fetch_add(&r->early, 1);   /* published before we looked, yet not found */
		else if (res == 0)
			atomic_fetch_add(&r->misses, 1);
		else {
			fprintf(stderr, "store-tool: race: key %u seen partial or wrong\n", i);
			atomic_fetch_add(&r->partial, 1);
		}
	}
	free(want);
	free(got);
	return NULL;
}

static int cmd_race(int argc, char **argv)
{
	struct store *s;
	struct race r;
	pthread_t readers[READERS];
	if (argc != 5)
		return die("usage: race STORE MOUNT N", EINVAL);
	memset(&r, 0, sizeof(r));
	r.mount = argv[3];
	r.n = (unsigned)strtoul(argv[4], NULL, 10);
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0)
		return die("store_open", ret);
	unsigned char *buf = malloc(200001);
	for (int t = 0; t < READERS; t++)
		pthread_create(&readers[t], NULL, race_reader, &r);
	for (unsigned i = 0; i < r.n && ret == 0; i++) {
		ret = race_publish_one(s, i, buf);
		atomic_store(&r.published, i + 1);
	}
	/* Let the readers see the last keys too. */
	usleep(300 * 1000);
	atomic_store(&r.done, 1);
	for (int t = 0; t < READERS; t++)
		pthread_join(readers[t], NULL);
	free(buf);
	store_close(s);
	if (ret < 0)
		return die("race publish", ret);
	printf("published=%u whole=%lu partial=%lu not-yet-published=%lu published-but-missed=%lu\n",
	       r.n, atomic_load(&r.whole), atomic_load(&r.partial), atomic_load(&r.misses),
	       atomic_load(&r.early));
	return atomic_load(&r.partial) == 0 && atomic_load(&r.early) == 0 && atomic_load(&r.whole) > 0
	           ? 0 : 1;
}

static int cmd_erofs(int argc, char **argv)
{
	if (argc < 4)
		return die("usage: erofs OP PATH [PATH2]", EINVAL);
	const char *op = argv[2], *p = argv[3], *q = argc > 4 ? argv[4] : NULL;
	int r = -1, fd = -1;
	errno = 0;
	if (!strcmp(op, "write")) {
		fd = open(p, O_WRONLY | O_CLOEXEC);
	} else if (!strcmp(op, "rdwr")) {
		fd = open(p, O_RDWR | O_CLOEXEC);
	} else if (!strcmp(op, "trunc")) {
		fd = open(p, O_RDONLY | O_TRUNC | O_CLOEXEC);
	} else if (!strcmp(op, "create")) {
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	} else if (!strcmp(op, "unlink")) {
		r = unlink(p);
	} else if (!strcmp(op, "rename") && q) {
		r = rename(p, q);
	} else if (!strcmp(op, "chmod")) {
		r = chmod(p, 0777);
	} else if (!strcmp(op, "chown")) {
		r = chown(p, 1, 1);
	} else if (!strcmp(op, "truncate")) {
		r = truncate(p, 0);
	} else if (!strcmp(op, "utimes")) {
		r = utimensat(AT_FDCWD, p, NULL, 0);
	} else if (!strcmp(op, "setxattr")) {
		r = setxattr(p, "user.cachepot", "x", 1, 0);
	} else if (!strcmp(op, "removexattr")) {
		r = removexattr(p, "user.cachepot");
	} else if (!strcmp(op, "mkdir")) {
		r = mkdir(p, 0755);
	} else if (!strcmp(op, "rmdir")) {
		r = rmdir(p);
	} else if (!strcmp(op, "symlink")) {
		r = symlink("target", p);
	} else if (!strcmp(op, "link") && q) {
		r = link(p, q);
	} else if (!strcmp(op, "mknod")) {
		r = mknod(p, S_IFIFO | 0644, 0);
	} else {
		return die(op, EINVAL);
	}
	if (fd >= 0) {
		close(fd);
		r = 0;
	}
	if (r == 0 || errno != EROFS) {
		fprintf(stderr, "store-tool: %s %s: %s\n", op, p, r == 0 ? "SUCCEEDED" : strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_read_errno(int argc, char **argv)
{
	char buf[65536];
	if (argc != 3)
		return die("usage: read-errno FILE", EINVAL);
	int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	int err = 0;
	if (fd < 0) {
		err = errno;
	} else {
		ssize_t n;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n < 0)
			err = errno;
		close(fd);
	}
	printf("%s\n", err == 0 ? "OK" : err == EIO ? "EIO" : strerror(err));
	return 0;
}

/* readdir's own number for NAME (ls and stat would stat the entry instead). */
static int cmd_dirent_ino(int argc, char **argv)
{
	if (argc != 4)
		return die("usage: dirent-ino DIR NAME", EINVAL);
	DIR *d = opendir(argv[2]);
	if (!d)
		return die(argv[2], errno);
	struct dirent *e;
	int found = 0;
	while (!found && (e = readdir(d)))
		if (strcmp(e->d_name, argv[3]) == 0) {
			printf("%llu\n", (unsigned long long)e->d_ino);
			found = 1;
		}
	closedir(d);
	return found ? 0 : die(argv[3], ENOENT);
}

struct export {
	struct store *store;
	int manifests_fd, blobs_fd;
};

static int export_manifest(void *ctx, const char key_hex[65], const char *text, size_t len)
{
	struct export *x = ctx;
	int fd = openat(x->manifests_fd, key_hex, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int ret = io_write_all(fd, text, len);
	close(fd);
	return ret;
}

static int export_blob(void *ctx, const struct store_blob_file *file)
{
	struct export *x = ctx;
	if (!file->sha256)
		return 0;
	int in = store_open_blob_unused(x->store, file->sha256);
	if (in < 0)
		return in;
	int out = openat(x->blobs_fd, file->rel + 3, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ret = out < 0 ? -errno : 0;
	char buf[65536];
	ssize_t n;
	while (ret == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		ret = io_write_all(out, buf, (size_t)n);
	close(in);
	if (out >= 0)
		close(out);
	return ret;
}

static int cmd_export(int argc, char **argv)
{
	struct export x = { NULL, -1, -1 };
	if (argc != 4)
		return die("usage: export STORE DIR", EINVAL);
	int ret = store_open(argv[2], STORE_READ_ONLY, &x.store);
	if (ret < 0)
		return die(argv[2], ret);
	char path[4096];
	static const char *const sub[] = { "", "/v1", "/v1/manifests", "/v1/blobs" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", argv[3], sub[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return die(path, errno);
	}
	snprintf(path, sizeof(path), "%s/v1/manifests", argv[3]);
	x.manifests_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/v1/blobs", argv[3]);
	x.blobs_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.manifests_fd < 0 || x.blobs_fd < 0)
		ret = -errno;
	if (ret == 0)
		ret = store_foreach_manifest(x.store, export_manifest, &x);
	if (ret == 0)
		ret = store_foreach_blob_file(x.store, export_blob, &x);
	if (x.manifests_fd >= 0)
		close(x.manifests_fd);
	if (x.blobs_fd >= 0)
		close(x.blobs_fd);
	store_close(x.store);
	return ret < 0 ? die("export", ret) : 0;
}

/* The BYTES bytes of synthetic key SEED's output. */
static void synth_body(unsigned seed, unsigned char *buf, size_t bytes)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < bytes; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
}

static void synth_key(unsigned seed, char hex[65])
{
	unsigned char d[32];
	char text[32];
	snprintf(text, sizeof(text), "synth-%u", seed);
	if (digest_buffer(text, strlen(text), d) < 0)
		memset(d, 0, sizeof(d));
	digest_to_hex(d, hex);
}

/* One collection to MAX_SIZE bytes as if AGE_SHIFT seconds later (so that the day-old rules
 * for unreferenced blobs and files with no record apply now). */
static int cmd_gc(int argc, char **argv)
{
	struct store *s;
	struct gc_report r;
	char err[256];
	if (argc != 4 && argc != 5)
		return die("usage: gc STORE MAX_SIZE [AGE_SHIFT]", EINVAL);
	struct gc_options o = { .max_size = strtoull(argv[3], NULL, 10) };
	if (argc == 5)
		o.now = (int64_t)time(NULL) + strtoll(argv[4], NULL, 10);
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0)
		return die("store_open", ret);
	ret = gc_run(s, &o, &r, err, sizeof(err));
	store_close(s);
	if (ret < 0) {
		fprintf(stderr, "store-tool: gc: %s\n", err);
		return 1;
	}
	printf("size_before=%llu size_after=%llu evicted=%llu blobs_removed=%llu orphans=%llu "
	       "strays=%llu\n", (unsigned long long)r.size_before, (unsigned long long)r.size_after,
	       (unsigned long long)r.keys_evicted, (unsigned long long)r.blobs_removed,
	       (unsigned long long)r.orphans_removed, (unsigned long long)r.strays_removed);
	return 0;
}

static int synth_bulk(struct store *s, unsigned n, size_t bytes, unsigned first);

static int cmd_synth(int argc, char **argv)
{
	struct store *s;
	int bulk = argc > 2 && strcmp(argv[2], "--bulk") == 0;
	if (bulk) {
		argv++;
		argc--;
	}
	if (argc != 5 && argc != 6)
		return die("usage: synth [--bulk] STORE N BYTES [FIRST]", EINVAL);
	unsigned n = (unsigned)strtoul(argv[3], NULL, 10), first = argc == 6 ? (unsigned)strtoul(argv[5], NULL, 10) : 0;
	size_t bytes = (size_t)strtoul(argv[4], NULL, 10);
	unsigned char *body = malloc(bytes ? bytes : 1), empty[32];
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0 || !body)
		return die("store_open", ret < 0 ? ret : -ENOMEM);
	if (bulk) {
		free(body);
		ret = synth_bulk(s, n, bytes, first);
		store_close(s);
		return ret < 0 ? die("synth --bulk", ret) : 0;
	}
	int cas = openat(store_dir_fd(s), "cas", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cas < 0)
		return die("cas/", -errno);
	ret = store_put_blob_buffer(s, "", 0, empty);
	int64_t base = (int64_t)time(NULL) - (int64_t)n * 3600 - 7200;
	for (unsigned i = 0; i < n && ret >= 0; i++) {
		struct manifest m;
		manifest_init(&m);
		synth_key(first + i, m.key);
		memset(m.toolchain, 'a', 64);
		m.outputs = calloc(1, sizeof(*m.outputs));
		m.n_outputs = 1;
		m.outputs[0].name = strdup("out");
		m.outputs[0].mode = 0644;
		m.outputs[0].size = bytes;
		memcpy(m.stdout_sha256, empty, 32);
		memcpy(m.stderr_sha256, empty, 32);
		m.worker = strdup("store-tool");
		m.created = base;
		synth_body(first + i, body, bytes);
		ret = store_put_blob_buffer(s, body, bytes, m.outputs[0].sha256);
		if (ret >= 0)
			ret = store_publish(s, &m);
		int64_t when = base + (int64_t)i * 3600;
		if (ret >= 0)
			ret = store_touch_key(s, m.key, when);
		if (ret >= 0) {
			char hex[65], rel[3 + 65];
			digest_to_hex(m.outputs[0].sha256, hex);
			snprintf(rel, sizeof(rel), "%.2s/%s", hex, hex);
			struct timespec t[2] = { { .tv_sec = when }, { .tv_nsec = UTIME_OMIT } };
			if (utimensat(cas, rel, t, 0) < 0)
				ret = -errno;
			printf("%s\n", m.key);
		}
		manifest_release(&m);
	}
	close(cas);
	free(body);
	store_close(s);
	return ret < 0 ? die("synth", ret) : 0;
}

#define SYNTH_BATCH 1024

/* cmd_synth's keys through store_bulk_*: the same manifests, blobs, use records and access
 * times, BATCH keys to an index write, one sync at the end. */
static int synth_bulk(struct store *s, unsigned n, size_t bytes, unsigned first)
{
	struct manifest *ms = calloc(SYNTH_BATCH, sizeof(*ms));
	int64_t *when = calloc(SYNTH_BATCH, sizeof(*when));
	int *results = calloc(SYNTH_BATCH, sizeof(*results));
	unsigned char *body = malloc(bytes ? bytes : 1), empty[32];
	int cas = openat(store_dir_fd(s), "cas", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = !ms || !when || !results || !body ? -ENOMEM : cas < 0 ? -errno : 0;
	if (ret == 0)
		ret = store_put_blob_buffer(s, "", 0, empty);
	int64_t base = (int64_t)time(NULL) - (int64_t)n * 3600 - 7200;
	for (unsigned done = 0; done < n && ret >= 0;) {
		unsigned k = n - done < SYNTH_BATCH ? n - done : SYNTH_BATCH;
		for (unsigned j = 0; j < k && ret >= 0; j++) {
			struct manifest *m = &ms[j];
			unsigned i = done + j;
			manifest_init(m);
			synth_key(first + i, m->key);
			memset(m->toolchain, 'a', 64);
			m->outputs = calloc(1, sizeof(*m->outputs));
			if (!m->outputs || !(m->outputs[0].name = strdup("out")) ||
			    !(m->worker = strdup("store-tool"))) {
				ret = -ENOMEM;
				break;
			}
			m->n_outputs = 1;
			m->outputs[0].mode = 0644;
			m->outputs[0].size = bytes;
			memcpy(m->stdout_sha256, empty, 32);
			memcpy(m->stderr_sha256, empty, 32);
			m->created = base;
			when[j] = base + (int64_t)i * 3600;
			synth_body(first + i, body, bytes);
			ret = store_bulk_put_blob(s, body, bytes, m->outputs[0].sha256);
		}
		if (ret >= 0)
			ret = store_bulk_publish(s, ms, k, when, results);
		for (unsigned j = 0; j < k && ret >= 0; j++) {
			char hex[65], rel[3 + 65];
			if (results[j] < 0 && results[j] != -EEXIST) {   /* there already: as synth */
				ret = results[j];
				break;
			}
			digest_to_hex(ms[j].outputs[0].sha256, hex);
			snprintf(rel, sizeof(rel), "%.2s/%s", hex, hex);
			struct timespec t[2] = { { .tv_sec = when[j] }, { .tv_nsec = UTIME_OMIT } };
			if (utimensat(cas, rel, t, 0) < 0)
				ret = -errno;
			printf("%s\n", ms[j].key);
		}
		for (unsigned j = 0; j < k; j++)
			manifest_release(&ms[j]);
		done += k;
	}
	if (ret >= 0)
		ret = store_bulk_sync(s);
	if (cas >= 0)
		close(cas);
	free(ms);
	free(when);
	free(results);
	free(body);
	return ret;
}

struct publish_bench {
	struct store *store;
	unsigned k;
	size_t bytes;
	atomic_ulong published, failed;
};

static void *publish_bench_thread(void *arg)
{
	struct publish_bench *b = arg;
	unsigned char *body = malloc(b->bytes ? b->bytes : 1), empty[32];
	if (!body || store_put_blob_buffer(b->store, "", 0, empty) < 0) {
		atomic_fetch_add(&b->failed, b->k);
		free(body);
		return NULL;
	}
	for (unsigned i = 0; i < b->k; i++) {
		struct manifest m;
		int ret;
		manifest_init(&m);
		fill_hex(m.key);
		memset(m.toolchain, 'c', 64);
		m.outputs = calloc(1, sizeof(*m.outputs));
		m.worker = strdup("store-tool");
		m.created = time(NULL);
		if (!m.outputs || !m.worker || !(m.outputs[0].name = strdup("out"))) {
			ret = -ENOMEM;
		} else {
			m.n_outputs = 1;
			m.outputs[0].mode = 0644;
			m.outputs[0].size = b->bytes;
			memcpy(m.stdout_sha256, empty, 32);
			memcpy(m.stderr_sha256, empty, 32);
			if (getrandom(body, b->bytes, 0) != (ssize_t)b->bytes)
				ret = -EIO;
			else
				ret = store_put_blob_buffer(b->store, body, b->bytes, m.outputs[0].sha256);
			if (ret >= 0)
				ret = store_publish(b->store, &m);
		}
		atomic_fetch_add(ret == 0 ? &b->published : &b->failed, 1);
		manifest_release(&m);
	}
	free(body);
	return NULL;
}

/* Durable publishing as the daemon's workers do it: each of THREADS threads puts a blob (and
 * stdout, stderr) and publishes a key, K times, all on one struct store. */
static int cmd_publish_bench(int argc, char **argv)
{
	struct publish_bench b = { .bytes = 16 };
	struct timespec t0, t1;
	if (argc != 5 && argc != 6)
		return die("usage: publish-bench STORE K THREADS [BYTES]", EINVAL);
	b.k = (unsigned)strtoul(argv[3], NULL, 10);
	unsigned threads = (unsigned)strtoul(argv[4], NULL, 10);
	if (argc == 6)
		b.bytes = (size_t)strtoul(argv[5], NULL, 10);
	if (threads == 0 || threads > 64 || b.bytes > (1u << 20))
		return die("publish-bench: THREADS 1..64, BYTES up to 1 MiB", EINVAL);
	int ret = store_open(argv[2], STORE_CREATE, &b.store);
	if (ret < 0)
		return die("store_open", ret);
	pthread_t t[64];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, publish_bench_thread, &b);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	store_close(b.store);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	unsigned long done = atomic_load(&b.published);
	printf("published=%lu failed=%lu threads=%u seconds=%.3f keys_per_s=%.1f\n", done,
	       atomic_load(&b.failed), threads, secs, secs > 0 ? (double)done / secs : 0.0);
	return atomic_load(&b.failed) ? 1 : 0;
}

static int cmd_open_time(int argc, char **argv)
{
	struct store *s;
	struct timespec t0, t1;
	if (argc != 3)
		return die("usage: open-time STORE", EINVAL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = store_open(argv[2], STORE_READ_ONLY, &s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret < 0)
		return die("store_open", ret);
	store_close(s);
	printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	return 0;
}

struct evict_race {
	const char *dir;
	unsigned n;
	atomic_int stop, ready;
	atomic_ulong looks, reads, bad;
};

static void *evict_race_reader(void *arg)
{
	struct evict_race *r = arg;
	struct store *s;
	unsigned char *buf = malloc(1 << 16), *want = malloc(1 << 16);
	if (!buf || !want || store_open(r->dir, STORE_READ_ONLY, &s) < 0) {
		atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->ready, 1);
		free(buf);
		free(want);
		return NULL;
	}
	atomic_fetch_add(&r->ready, 1);
	unsigned seed = (unsigned)(uintptr_t)pthread_self();
	while (!atomic_load(&r->stop)) {
		char key[65];
		struct manifest m;
		unsigned i = (seed = seed * 1103515245u + 12345u) >> 8;
		synth_key(i % r->n, key);
		atomic_fetch_add(&r->looks, 1);
		if (store_get_verified_manifest(s, key, &m, NULL, NULL) < 0)
			continue;
		int fd = store_open_blob(s, m.outputs[0].sha256);
		if (fd < 0) {
			/* The blob is gone: then the key must be gone from the index too. */
			char *text = NULL;
			size_t len;
			if (store_catch_up(s) < 0 || store_get_manifest(s, key, &text, &len) != -ENOENT) {
				fprintf(stderr, "store-tool: key %s found after its blob was removed\n", key);
				atomic_fetch_add(&r->bad, 1);
			}
			free(text);
		} else {
			/* Open before (or without) its eviction: every byte as published. */
			size_t size = m.outputs[0].size < (1 << 16) ? m.outputs[0].size : (1 << 16);
			usleep(200);
			synth_body(i % r->n, want, size);
			if (pread(fd, buf, size, 0) != (ssize_t)size || memcmp(buf, want, size) != 0) {
				fprintf(stderr, "store-tool: blob of %s read other bytes\n", key);
				atomic_fetch_add(&r->bad, 1);
			}
			atomic_fetch_add(&r->reads, 1);
			close(fd);
		}
		manifest_release(&m);
	}
	store_close(s);
	free(buf);
	free(want);
	return NULL;
}

static int cmd_evict_race(int argc, char **argv)
{
	struct evict_race r = { .dir = argc == 4 ? argv[2] : NULL };
	pthread_t threads[8];
	struct store *s;
	if (argc != 4)
		return die("usage: evict-race STORE N", EINVAL);
	r.n = (unsigned)strtoul(argv[3], NULL, 10);
	int ret = store_open(argv[2], STORE_CREATE, &s);
	if (ret < 0 || r.n == 0)
		return die("store_open", ret < 0 ? ret : -EINVAL);
	for (int t = 0; t < 8; t++)
		pthread_create(&threads[t], NULL, evict_race_reader, &r);
	while (atomic_load(&r.ready) < 8)
		usleep(1000);
	usleep(50000);
	unsigned evicted = 0;
	for (unsigned i = 0; i < r.n; i++) {
		char key[65];
		struct store_eviction ev;
		synth_key(i, key);
		if (store_evict_key(s, key, &ev) == 0)
			evicted++;
		usleep(5000);
	}
	usleep(100000);
	atomic_store(&r.stop, 1);
	for (int t = 0; t < 8; t++)
		pthread_join(threads[t], NULL);
	store_close(s);
	printf("%u evicted, %lu lookups, %lu blob reads, %lu bad\n", evicted, atomic_load(&r.looks),
	       atomic_load(&r.reads), atomic_load(&r.bad));
	return atomic_load(&r.bad) || evicted != r.n || atomic_load(&r.reads) == 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return die("usage: store-tool COMMAND ...", EINVAL);
	const char *c = argv[1];
	if (!strcmp(c, "put"))
		return cmd_put(argc, argv);
	if (!strcmp(c, "publish"))
		return cmd_publish(argc, argv);
	if (!strcmp(c, "publish-loop"))
		return cmd_publish_loop(argc, argv);
	if (!strcmp(c, "crash-loop"))
		return cmd_crash_loop(argc, argv);
	if (!strcmp(c, "check"))
		return cmd_check(argc, argv);
	if (!strcmp(c, "race"))
		return cmd_race(argc, argv);
	if (!strcmp(c, "erofs"))
		return cmd_erofs(argc, argv);
	if (!strcmp(c, "read-errno"))
		return cmd_read_errno(argc, argv);
	if (!strcmp(c, "export"))
		return cmd_export(argc, argv);
	if (!strcmp(c, "dirent-ino"))
		return cmd_dirent_ino(argc, argv);
	if (!strcmp(c, "fsck"))
		return fsck_command(argc - 1, argv + 1);
	if (!strcmp(c, "gc"))
		return cmd_gc(argc, argv);
	if (!strcmp(c, "publish-acked"))
		return cmd_publish_acked(argc, argv);
	if (!strcmp(c, "check-acked"))
		return cmd_check_acked(argc, argv);
	if (!strcmp(c, "synth"))
		return cmd_synth(argc, argv);
	if (!strcmp(c, "publish-bench"))
		return cmd_publish_bench(argc, argv);
	if (!strcmp(c, "open-time"))
		return cmd_open_time(argc, argv);
	if (!strcmp(c, "evict-race"))
		return cmd_evict_race(argc, argv);
	if (!strcmp(c, "godown"))
		return cmd_godown(argc, argv);
	return die(c, EINVAL);
}
