/* The store: blobs in cas/, signed manifests in a RocksDB index. Layout and guarantees in
 * fs/store.h; the manifest format in fs/manifest.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <rocksdb/c.h>

#include "fs/fsync_set.h"
#include "fs/store.h"
#include "fs/tree.h"
#include "hash/digest.h"
#include "hash/prekey.h"
#include "base/io.h"
#include "base/path.h"

#define PREFIX_ACTION 'a'
#define PREFIX_BLOB 'b'
#define PREFIX_PREKEY 'p'
#define PREFIX_USE 'u'
#define PREFIX_PIN 'n'
#define GENERATION_KEY "g"
#define HOLD_BUCKETS 1024
#define NOSPACE_BYTES (4u << 20)   /* below this much free, a failed index write is ENOSPC */
#define INDEX_KEY_SIZE 33
#define BLOB_RECORD_SIZE 24
#define KEY_FILE_MAX 4096          /* a PEM Ed25519 key is ~120 bytes */
#define PUBLIC_KEY_FILE_MAX 128    /* 64 hex digits and a newline */
#define COPY_CHUNK (1u << 20)
#define WRITES_FILE "writes"       /* the writer's count of index writes; see "Catching up" */
#define NOT_CAUGHT_UP UINT64_MAX

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "the write count is shared between processes");

struct store {
	int dir_fd;                /* O_PATH of the store directory */
	int lock_fd;               /* writer: index/, flock'd for as long as the store is open */
	int cas_fd;                /* cas/ (O_RDONLY|O_DIRECTORY) */
	int tmp_fd;                /* tmp/ (writer only, else -1) */
	unsigned flags;
	char *index_path;
	char *secondary_path;      /* reader: private state of the secondary instance */
	rocksdb_t *db;
	rocksdb_options_t *options;
	rocksdb_readoptions_t *read_options;
	rocksdb_writeoptions_t *sync_write;   /* manifests: sync */
	rocksdb_writeoptions_t *async_write;  /* blob records of unpublished blobs: no sync */
	EVP_PKEY *signing_key;     /* writer only */
	unsigned char public_key[32];
	pthread_mutex_t publish_lock;         /* serialises check-then-write of keys and refs */
	pthread_mutex_t catch_up_lock;        /* one catch-up at a time */
	atomic_uint_fast64_t catch_ups_started;
	_Atomic unsigned long long *writes;   /* WRITES_FILE mapped, or NULL (then: always catch up) */
	atomic_ullong caught_up_to;           /* reader: the count its last catch-up covers */
	atomic_uint_fast64_t nondeterministic, published, blobs_written, bytes_written;
	atomic_uint_fast64_t keys_evicted, blobs_removed, bytes_freed;
	/* Blobs committed by this process that no manifest may name yet (a job's outputs before
	 * its publish, a client's uploads before its job): eviction keeps their files. Under
	 * publish_lock; see "Eviction" below. */
	struct blob_hold {
		struct blob_hold *next;
		unsigned char sha[32];
		uint64_t count;
		int64_t since;
	} *holds[HOLD_BUCKETS];
};

struct store_blob_writer {
	struct store *store;
	int fd;
	char tmp_name[40];
	EVP_MD_CTX *md;
	uint64_t size;
	uint64_t space_checked;    /* SIZE when check_space last ran */
};

static int writer(const struct store *s)
{
	return (s->flags & STORE_READ_ONLY) == 0;
}

static void index_key(char out[INDEX_KEY_SIZE], char prefix, const unsigned char bytes[32])
{
	out[0] = prefix;
	memcpy(out + 1, bytes, 32);
}

/* "ab/<hex>" under cas/ for SHA. */
static void blob_rel_path(const unsigned char sha[32], char out[3 + DIGEST_HEX_SIZE])
{
	char hex[DIGEST_HEX_SIZE];
	digest_to_hex(sha, hex);
	snprintf(out, 3 + DIGEST_HEX_SIZE, "%.2s/%s", hex, hex);
}

/* RocksDB's C API reports failures as text only, so its errors are -EIO here. The answers a
 * caller acts on (no index yet, another writer) are found out from the kernel before RocksDB is
 * asked: see take_writer_lock and open_index. */
static int errno_of_rocksdb(char *err)
{
	free(err);
	return -EIO;
}

/* A failed index WRITE: ENOSPC when the file system of the store is (nearly) full, as the
 * kernel says, since RocksDB's C API does not give the errno; otherwise as errno_of_rocksdb. */
static int errno_of_rocksdb_write(const struct store *s, char *err)
{
	struct statvfs v;
	free(err);
	if (fstatvfs(s->cas_fd, &v) == 0) {
		uint64_t blocks = geteuid() == 0 ? v.f_bfree : v.f_bavail;
		if (blocks * (uint64_t)v.f_frsize < NOSPACE_BYTES || (v.f_files && v.f_favail == 0))
			return -ENOSPC;
	}
	return -EIO;
}

/* The space a writer leaves free: 5% of the file system, at least 8 MiB and at most 64 MiB.
 * RocksDB must never meet ENOSPC itself (its WAL writer aborts the process on a sync after a
 * failed write: seen with RocksDB 7.8 on a full ext4), so blobs and index writes stop here,
 * with -ENOSPC, and only evictions, which free space, may use the reserve. */
static int check_space(const struct store *s, uint64_t need)
{
	struct statvfs v;
	if (fstatvfs(s->cas_fd, &v) < 0)
		return -errno;
	uint64_t avail = (geteuid() == 0 ? v.f_bfree : v.f_bavail) * (uint64_t)v.f_frsize;
	uint64_t reserve = (uint64_t)v.f_blocks * v.f_frsize / 20;
	reserve = reserve < (8u << 20) ? (8u << 20) : reserve > (64u << 20) ? (64u << 20) : reserve;
	if ((v.f_files && v.f_favail < 16) || avail < need || avail - need < reserve)
		return -ENOSPC;
	return 0;
}

static void encode_record(const struct store_blob_record *r, unsigned char out[BLOB_RECORD_SIZE])
{
	uint64_t v[3] = { r->size, r->refs, (uint64_t)r->last_use };
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			out[8 * i + b] = (unsigned char)(v[i] >> (8 * b));
}

static int decode_record(const char *data, size_t len, struct store_blob_record *r)
{
	if (len != BLOB_RECORD_SIZE)
		return -EBADMSG;
	uint64_t v[3] = { 0, 0, 0 };
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			v[i] |= (uint64_t)(unsigned char)data[8 * i + b] << (8 * b);
	r->size = v[0];
	r->refs = v[1];
	r->last_use = (int64_t)v[2];
	return 0;
}

static int mkdir_at(int dirfd, const char *name, mode_t mode)
{
	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ret = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* Write DATA to DIRFD/NAME through a temp file, fsync'd, mode MODE; with NOREPLACE an existing
 * NAME is kept and -EEXIST returned. */
static int write_file_durably(int dirfd, const char *name, const void *data, size_t len,
                              mode_t mode, int noreplace)
{
	char tmp[300];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	int ret = io_write_all(fd, data, len);
	if (ret == 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
		ret = -errno;
	close(fd);
	if (ret == 0 && renameat2(dirfd, tmp, dirfd, name, noreplace ? RENAME_NOREPLACE : 0) < 0)
		ret = -errno;
	if (ret < 0)
		unlinkat(dirfd, tmp, 0);
	else
		ret = fsync_dir_at(dirfd, ".");
	return ret;
}

static int write_public_key(int key_fd, const unsigned char pub[32])
{
	char line[DIGEST_HEX_SIZE + 1];
	digest_to_hex(pub, line);
	line[64] = '\n';
	return write_file_durably(key_fd, "ed25519.pub", line, 65, 0644, 0);
}

/* Writer: load key/ed25519.pem, or create it (first start). */
static int load_or_create_signing_key(struct store *s)
{
	int key_fd = openat(s->dir_fd, "key", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (key_fd < 0)
		return -errno;
	char *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *key = NULL;
	size_t pub_len = 32;
	int ret = io_read_file_at(key_fd, "ed25519.pem", O_NOFOLLOW, KEY_FILE_MAX, &buf, &len);
	if (ret == -ENOENT) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		bio = BIO_new(BIO_s_mem());
		ret = -ENOMEM;
		if (!key || !bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
			goto out;
		char *pem;
		long n = BIO_get_mem_data(bio, &pem);
		ret = write_file_durably(key_fd, "ed25519.pem", pem, (size_t)n, 0600, 1);
		if (ret < 0)
			goto out;
	} else if (ret == 0) {
		ret = -EBADMSG;
		bio = BIO_new_mem_buf(buf, (int)len);
		if (!bio || !(key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ||
		    EVP_PKEY_get_id(key) != EVP_PKEY_ED25519)
			goto out;
	} else {
		goto out;
	}
	ret = -EBADMSG;
	if (EVP_PKEY_get_raw_public_key(key, s->public_key, &pub_len) != 1 || pub_len != 32)
		goto out;
	/* Rewritten at every writer start: it is derived, and a crash may have cut it short. */
	ret = write_public_key(key_fd, s->public_key);
	if (ret < 0)
		goto out;
	s->signing_key = key;
	key = NULL;
out:
	OPENSSL_clear_free(buf, len);
	EVP_PKEY_free(key);
	BIO_free(bio);
	close(key_fd);
	return ret;
}

static int load_public_key(struct store *s)
{
	char *buf = NULL;
	size_t len = 0;
	int key_fd = openat(s->dir_fd, "key", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (key_fd < 0)
		return -errno;
	int ret = io_read_file_at(key_fd, "ed25519.pub", O_NOFOLLOW, PUBLIC_KEY_FILE_MAX, &buf, &len);
	close(key_fd);
	if (ret < 0)
		return ret;
	if (len < 64 || (len > 64 && buf[64] != '\n') || digest_from_hex(buf, s->public_key) < 0)
		ret = -EBADMSG;
	free(buf);
	return ret;
}

static int create_layout(int dir_fd)
{
	static const char *const dirs[] = { "cas", "tmp", "index", "toolchains", "jobs" };
	int ret = 0;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && ret == 0; i++)
		ret = mkdir_at(dir_fd, dirs[i], strcmp(dirs[i], "tmp") == 0 ? 0700 : 0755);
	/* Searchable, not listable: the private key file is 0600 in it, and every user's wrapper
	 * reads the public one by its name to pin it (client/settings.h). A store made when this
	 * was 0700 is opened up the same way. */
	if (ret == 0)
		ret = mkdir_at(dir_fd, "key", 0711);
	if (ret == 0) {
		int key_fd = openat(dir_fd, "key", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (key_fd < 0 || fchmod(key_fd, 0711) < 0)
			ret = -errno;
		if (key_fd >= 0)
			close(key_fd);
	}
	for (unsigned i = 0; i < 256 && ret == 0; i++) {
		char name[8];
		snprintf(name, sizeof(name), "cas/%02x", i);
		ret = mkdir_at(dir_fd, name, 0755);
	}
	return ret;
}

/* Remove every file directly in DIRFD (temp files of writers that died; secondary state). */
static void empty_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd, e->d_name, 0);
	closedir(d);
}

/* One writer per store, decided by the kernel. The writer holds flock(LOCK_EX) on the index
 * directory for as long as the store is open; a second writer, in this process or another, gets
 * EWOULDBLOCK at once, which is -EBUSY here. A lock of the directory rather than of RocksDB's
 * own index/LOCK: RocksDB locks that file with fcntl(F_SETLK), and POSIX drops every fcntl lock a
 * process holds on a file when ANY of its fds of that file is closed, so probing index/LOCK from
 * a process whose store is already open would hand the lock away. Under our flock no store of
 * this process has the index open as a writer, so index/LOCK may then be probed (F_OFD_GETLK
 * reports a lock of any process, ours included) to tell another RocksDB program holding the
 * index (a repair tool, say) from a real I/O error. */
static int take_writer_lock(struct store *s)
{
	s->lock_fd = openat(s->dir_fd, "index", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (s->lock_fd < 0)
		return -errno;
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	int fd = openat(s->lock_fd, "LOCK", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;   /* a new index: nobody holds it */
	struct flock probe = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int ret = fcntl(fd, F_OFD_GETLK, &probe) < 0 ? -errno : 0;
	close(fd);
	if (ret == 0 && probe.l_type != F_UNLCK) {
		fprintf(stderr, "cachepot: store index %s: locked by another program (pid %d)\n",
		        s->index_path, (int)probe.l_pid);
		ret = -EBUSY;
	}
	return ret;
}

/* ---- Catching up ----
 * A reader's index is a RocksDB secondary, which sees what the writer wrote since it opened only
 * after a catch-up: a walk of the writer's MANIFEST and WAL, milliseconds and more. The writer
 * counts its index writes in WRITES_FILE, eight bytes shared by mmap, raising the count after
 * every write returns (and once when it opens, since opening rewrites RocksDB's files). A reader
 * notes the count it read before each catch-up; while the count is that, nothing has been
 * written since, and a miss is a miss without a catch-up. The count lives only in the page cache
 * (it is never synced): after a reboot every reader is new. A count that changed in any way,
 * down included, means a catch-up. Without the file (a store of an older writer, a disk too full
 * to make it) readers catch up on every miss, as they always did. */
static void map_writes(struct store *s)
{
	int flags = writer(s) ? O_RDWR | O_CREAT : O_RDONLY;
	int fd = openat(s->dir_fd, WRITES_FILE, flags | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	struct stat st;
	size_t size = sizeof(*s->writes);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
	    && ((uint64_t)st.st_size >= size || (writer(s) && ftruncate(fd, (off_t)size) == 0))) {
		void *p = mmap(NULL, size, writer(s) ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
		               fd, 0);
		if (p != MAP_FAILED)
			s->writes = p;
	}
	close(fd);
}

/* After each index write of the writer has returned: readers catch up again. */
static void count_write(struct store *s)
{
	if (s->writes)
		atomic_fetch_add_explicit(s->writes, 1, memory_order_release);
}

/* The writer's count now, or NOT_CAUGHT_UP when readers cannot know it (no file). */
static unsigned long long writes_now(struct store *s)
{
	if (!s->writes)
		map_writes(s);   /* a writer that made it since we opened */
	if (!s->writes)
		return NOT_CAUGHT_UP;
	unsigned long long n = atomic_load_explicit(s->writes, memory_order_acquire);
	return n == NOT_CAUGHT_UP ? 0 : n;
}

static int open_index(struct store *s)
{
	char *err = NULL;
	s->options = rocksdb_options_create();
	s->read_options = rocksdb_readoptions_create();
	s->sync_write = rocksdb_writeoptions_create();
	s->async_write = rocksdb_writeoptions_create();
	if (!s->options || !s->read_options || !s->sync_write || !s->async_write)
		return -ENOMEM;
	rocksdb_writeoptions_set_sync(s->sync_write, 1);
	rocksdb_options_set_keep_log_file_num(s->options, 2);
	/* RocksDB preallocates each WAL file to 1.1 times this (a default of 70 MB), and a file
	 * system with less free space than that makes its WAL writer fail an assertion and abort
	 * (RocksDB 7.8 on a 32 MB ext4); smaller memtables keep that well inside the space
	 * check_space reserves. */
	rocksdb_options_set_write_buffer_size(s->options, 4u << 20);
	/* A Bloom filter per table (10 bits a key): a lookup of a key that is not there (every
	 * miss, and the eviction generation until the first eviction) skips the tables that cannot
	 * hold it instead of reading a block of each. At 100k keys it took a miss through the mount
	 * from 105 to 25 us of CPU (bench/README.md); tables written before get it at compaction. */
	{
		rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
		rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
		rocksdb_options_set_block_based_table_factory(s->options, t);
		rocksdb_block_based_options_destroy(t);
	}
	if (writer(s)) {
		int ret = take_writer_lock(s);
		if (ret < 0)
			return ret;
		rocksdb_options_set_create_if_missing(s->options, 1);
		s->db = rocksdb_open(s->options, s->index_path, &err);
		if (s->db) {
			map_writes(s);
			count_write(s);
		}
	} else {
		/* A secondary must keep every table file open (RocksDB's requirement for catch-up). */
		rocksdb_options_set_max_open_files(s->options, -1);
		/* No index yet (or no store): -ENOENT from the kernel, not from RocksDB's text. */
		struct stat st;
		if (fstatat(s->dir_fd, "index/CURRENT", &st, 0) < 0)
			return -errno;
		const char *base = getenv("RUNTIME_DIRECTORY");
		if (!base || !*base || strchr(base, ':'))
			base = "/tmp";
		if (asprintf(&s->secondary_path, "%s/cachepot-secondary-XXXXXX", base) < 0) {
			s->secondary_path = NULL;
			return -ENOMEM;
		}
		if (!mkdtemp(s->secondary_path)) {
			free(s->secondary_path);
			s->secondary_path = NULL;
			return -errno;
		}
		/* Read before the open: the secondary holds at least every write counted so far. */
		map_writes(s);
		atomic_store(&s->caught_up_to, writes_now(s));
		s->db = rocksdb_open_as_secondary(s->options, s->index_path, s->secondary_path, &err);
	}
	if (!s->db) {
		fprintf(stderr, "cachepot: store index %s: %s\n", s->index_path, err ? err : "?");
		return errno_of_rocksdb(err);
	}
	return 0;
}

int store_open(const char *dir, unsigned flags, struct store **out)
{
	if (!dir || ((flags & STORE_CREATE) && (flags & STORE_READ_ONLY)))
		return -EINVAL;
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int ret;
	s->flags = flags;
	s->dir_fd = s->cas_fd = s->tmp_fd = s->lock_fd = -1;
	pthread_mutex_init(&s->publish_lock, NULL);
	pthread_mutex_init(&s->catch_up_lock, NULL);
	if ((flags & STORE_CREATE) && mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		goto fail;
	}
	s->dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		ret = -errno;
		goto fail;
	}
	if ((flags & STORE_CREATE) && (ret = create_layout(s->dir_fd)) < 0)
		goto fail;
	if (asprintf(&s->index_path, "%s/index", dir) < 0) {
		s->index_path = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	/* The index first: for a writer it takes RocksDB's lock, so what follows (key creation, the
	 * tmp/ sweep) runs in one process only. */
	if ((ret = open_index(s)) < 0)
		goto fail;
	s->cas_fd = openat(s->dir_fd, "cas", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->cas_fd < 0) {
		ret = -errno;
		goto fail;
	}
	if (writer(s)) {
		s->tmp_fd = openat(s->dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->tmp_fd < 0) {
			ret = -errno;
			goto fail;
		}
		empty_dir(s->tmp_fd);
		ret = load_or_create_signing_key(s);
	} else {
		ret = load_public_key(s);
	}
	if (ret < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return ret;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->db)
		rocksdb_close(s->db);
	if (s->options)
		rocksdb_options_destroy(s->options);
	if (s->read_options)
		rocksdb_readoptions_destroy(s->read_options);
	if (s->sync_write)
		rocksdb_writeoptions_destroy(s->sync_write);
	if (s->async_write)
		rocksdb_writeoptions_destroy(s->async_write);
	if (s->writes)
		munmap((void *)s->writes, sizeof(*s->writes));
	if (s->secondary_path) {
		int fd = open(s->secondary_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			empty_dir(fd);
			close(fd);
		}
		rmdir(s->secondary_path);
		free(s->secondary_path);
	}
	EVP_PKEY_free(s->signing_key);
	free(s->index_path);
	if (s->tmp_fd >= 0)
		close(s->tmp_fd);
	if (s->cas_fd >= 0)
		close(s->cas_fd);
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);   /* after rocksdb_close: the next writer may start now */
	for (size_t b = 0; b < HOLD_BUCKETS; b++)
		while (s->holds[b]) {
			struct blob_hold *h = s->holds[b];
			s->holds[b] = h->next;
			free(h);
		}
	pthread_mutex_destroy(&s->publish_lock);
	pthread_mutex_destroy(&s->catch_up_lock);
	free(s);
}

int store_dir_fd(const struct store *s)
{
	return s->dir_fd;
}

void store_public_key(const struct store *s, unsigned char out[32])
{
	memcpy(out, s->public_key, 32);
}

/* ---- Blobs ---- */

int store_blob_begin(struct store *s, struct store_blob_writer **out)
{
	if (!writer(s))
		return -EROFS;
	struct store_blob_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->store = s;
	w->fd = -1;   /* calloc's 0 would pass for an open fd if getrandom fails at once */
	w->md = EVP_MD_CTX_new();
	if (!w->md || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(w->md);
		free(w);
		return -ENOMEM;
	}
	for (int attempt = 0; attempt < 16; attempt++) {
		unsigned char r[8];
		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			break;
		snprintf(w->tmp_name, sizeof(w->tmp_name), "blob-%02x%02x%02x%02x%02x%02x%02x%02x",
		         r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
		w->fd = openat(s->tmp_fd, w->tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		               0600);
		if (w->fd >= 0 || errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		int ret = -errno;
		EVP_MD_CTX_free(w->md);
		free(w);
		return ret ? ret : -EIO;
	}
	*out = w;
	return 0;
}

int store_blob_write(struct store_blob_writer *w, const void *data, size_t len)
{
	/* At the first write and every MiB: one statvfs, not one a chunk. */
	if (w->size == 0 || w->size + len - w->space_checked >= (1u << 20)) {
		int ret = check_space(w->store, len > (1u << 20) ? len : (1u << 20));
		if (ret < 0)
			return ret;
		w->space_checked = w->size + len;
	}
	if (EVP_DigestUpdate(w->md, data, len) != 1)
		return -EIO;
	int ret = io_write_all(w->fd, data, len);
	if (ret == 0)
		w->size += len;
	return ret;
}

void store_blob_abort(struct store_blob_writer *w)
{
	if (!w)
		return;
	close(w->fd);
	unlinkat(w->store->tmp_fd, w->tmp_name, 0);
	EVP_MD_CTX_free(w->md);
	free(w);
}

/* Record a blob that is now in cas/ (size; refs 0 until a manifest names it). Not synced: the
 * record is advisory until a publish rewrites it in the synced batch. Under publish_lock, like
 * every read-then-write of a record: a publish of the same blob between our get and our put
 * would otherwise have its refs overwritten with 0. A failed get writes nothing, for the same
 * reason. */
#define HOLD_SECONDS (24 * 3600)   /* a hold no publish released lapses after this */

static struct blob_hold **hold_bucket(struct store *s, const unsigned char sha[32])
{
	return &s->holds[((unsigned)sha[0] << 8 | sha[1]) % HOLD_BUCKETS];
}

/* The hold of SHA, dropping lapsed ones of its bucket on the way. Under publish_lock. */
static struct blob_hold *hold_find(struct store *s, const unsigned char sha[32], int64_t now)
{
	struct blob_hold **p = hold_bucket(s, sha), *found = NULL;
	while (*p) {
		struct blob_hold *h = *p;
		if (h->since < now - HOLD_SECONDS) {
			*p = h->next;
			free(h);
			continue;
		}
		if (memcmp(h->sha, sha, 32) == 0)
			found = h;
		p = &h->next;
	}
	return found;
}

/* One more hold of SHA (a commit). Out of memory, the blob goes unheld: eviction may then
 * remove it before its manifest is published, and that publish fails with -ENOENT, whole. */
static void hold_add(struct store *s, const unsigned char sha[32], int64_t now)
{
	struct blob_hold *h = hold_find(s, sha, now);
	if (!h && (h = calloc(1, sizeof(*h)))) {
		memcpy(h->sha, sha, 32);
		h->next = *hold_bucket(s, sha);
		*hold_bucket(s, sha) = h;
	}
	if (h) {
		h->count++;
		h->since = now;
	}
}

/* A publish naming SHA took one hold's place (its record now has a reference). */
static void hold_release(struct store *s, const unsigned char sha[32], int64_t now)
{
	struct blob_hold *h = hold_find(s, sha, now);
	if (h && --h->count == 0) {
		struct blob_hold **p = hold_bucket(s, sha);
		while (*p != h)
			p = &(*p)->next;
		*p = h->next;
		free(h);
	}
}

static void note_blob(struct store *s, const unsigned char sha[32], uint64_t size)
{
	char key[INDEX_KEY_SIZE], *err = NULL;
	size_t len = 0;
	index_key(key, PREFIX_BLOB, sha);
	pthread_mutex_lock(&s->publish_lock);
	char *old = rocksdb_get(s->db, s->read_options, key, sizeof(key), &len, &err);
	if (!old && !err && check_space(s, 4096) == 0) {
		struct store_blob_record rec = { size, 0, (int64_t)time(NULL) };
		unsigned char value[BLOB_RECORD_SIZE];
		encode_record(&rec, value);
		rocksdb_put(s->db, s->async_write, key, sizeof(key), (const char *)value, sizeof(value),
		            &err);
		count_write(s);
	}
	pthread_mutex_unlock(&s->publish_lock);
	rocksdb_free(old);
	free(err);
}

/* Free W after a commit, removing its temp file when UNLINK_TMP (it was not renamed). */
static void blob_writer_free(struct store_blob_writer *w, int unlink_tmp)
{
	if (w->fd >= 0)
		close(w->fd);
	if (unlink_tmp)
		unlinkat(w->store->tmp_fd, w->tmp_name, 0);
	EVP_MD_CTX_free(w->md);
	free(w);
}

/* The commit of N writers of one store, together (store.h). Content durable before the name,
 * so a name in cas/ always has its bytes: every file is fsync'd (fs/fsync_set.h: submitted at
 * once) before any is renamed, and after the renames each distinct cas/ab/ directory is fsync'd
 * once, also for a blob that existed (its writer may have died between rename and fsync). RET[i]
 * is the outcome of WS[i]; every writer is freed. */
static void commit_writers(struct store *s, struct store_blob_writer **ws, size_t n,
                           const unsigned char *const *expect, unsigned char (*sha)[32], int *ret)
{
	unsigned fsync_flags = (s->flags & STORE_PLAIN_FSYNC) ? FSYNC_SET_PLAIN : 0;
	int *fds = calloc(n, sizeof(*fds));
	size_t n_fds = 0;
	if (!fds) {
		for (size_t i = 0; i < n; i++) {
			ret[i] = -ENOMEM;
			blob_writer_free(ws[i], 1);
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned int md_len = 0;
		ret[i] = 0;
		if (EVP_DigestFinal_ex(ws[i]->md, sha[i], &md_len) != 1 || md_len != 32)
			ret[i] = -EIO;
		else if (expect && expect[i] && memcmp(expect[i], sha[i], 32) != 0)
			ret[i] = -EBADMSG;
		else if (fchmod(ws[i]->fd, 0444) < 0)
			ret[i] = -errno;
		else
			fds[n_fds++] = ws[i]->fd;
	}
	/* One fsync each, in flight together. A failure cannot be told apart per fd once the set
	 * is joined, so it fails every blob of the set (none is renamed). */
	int sync_ret = fsync_set(fds, n_fds, fsync_flags);
	/* Held before the names are looked at: a blob already in cas/ that an eviction finds
	 * unreferenced from here on stays, and one it removed before is moved in again. */
	int64_t now = (int64_t)time(NULL);
	pthread_mutex_lock(&s->publish_lock);
	for (size_t i = 0; i < n; i++) {
		if (ret[i] == 0 && sync_ret < 0)
			ret[i] = sync_ret;
		if (ret[i] == 0)
			hold_add(s, sha[i], now);
	}
	pthread_mutex_unlock(&s->publish_lock);
	n_fds = 0;
	for (size_t i = 0; i < n; i++) {
		char rel[3 + DIGEST_HEX_SIZE];
		if (ret[i] < 0)
			continue;
		blob_rel_path(sha[i], rel);
		if (renameat2(s->tmp_fd, ws[i]->tmp_name, s->cas_fd, rel, RENAME_NOREPLACE) < 0) {
			if (errno != EEXIST) {
				ret[i] = -errno;
				continue;
			}
			unlinkat(s->tmp_fd, ws[i]->tmp_name, 0);
		}
		ws[i]->tmp_name[0] = 0;   /* nothing left in tmp/ to remove */
		/* The directory, once for every blob that went there. */
		rel[2] = 0;
		size_t j;
		for (j = 0; j < i; j++)
			if (ret[j] == 0 && memcmp(sha[j], sha[i], 1) == 0)
				break;
		if (j < i)
			continue;
		int dfd = openat(s->cas_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			ret[i] = -errno;
		else
			fds[n_fds++] = dfd;
	}
	sync_ret = fsync_set(fds, n_fds, fsync_flags);
	for (size_t k = 0; k < n_fds; k++)
		close(fds[k]);
	free(fds);
	for (size_t i = 0; i < n; i++) {
		/* As with the files, a failed directory fsync fails every blob renamed. */
		if (ret[i] == 0 && sync_ret < 0)
			ret[i] = sync_ret;
		if (ret[i] == 0) {
			note_blob(s, sha[i], ws[i]->size);
			atomic_fetch_add(&s->blobs_written, 1);
			atomic_fetch_add(&s->bytes_written, ws[i]->size);
		}
		blob_writer_free(ws[i], ws[i]->tmp_name[0] != 0);
	}
}

int store_blob_commit(struct store_blob_writer *w, const unsigned char *expect,
                      unsigned char actual[32])
{
	unsigned char sha[1][32] = { { 0 } };
	int ret;
	commit_writers(w->store, &w, 1, &expect, sha, &ret);
	if (actual)
		memcpy(actual, sha[0], 32);
	return ret;
}

int store_blob_commit_many(struct store_blob_writer **ws, size_t n, unsigned char (*actual)[32])
{
	if (n == 0)
		return 0;
	unsigned char (*sha)[32] = calloc(n, sizeof(*sha));
	int *ret = calloc(n, sizeof(*ret));
	if (!sha || !ret) {
		free(sha);
		free(ret);
		for (size_t i = 0; i < n; i++)
			store_blob_abort(ws[i]);
		return -ENOMEM;
	}
	commit_writers(ws[0]->store, ws, n, NULL, sha, ret);
	int first = 0;
	for (size_t i = 0; i < n; i++) {
		if (actual)
			memcpy(actual[i], sha[i], 32);
		if (ret[i] < 0 && first == 0)
			first = ret[i];
	}
	free(sha);
	free(ret);
	return first;
}

int store_blob_write_fd(struct store_blob_writer *w, int fd)
{
	char *buf = malloc(COPY_CHUNK);
	int ret = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((ret = store_blob_write(w, buf, (size_t)n)) < 0)
			break;
	}
	free(buf);
	return ret;
}

int store_put_blob_fd(struct store *s, int fd, const unsigned char *expect, unsigned char actual[32])
{
	struct store_blob_writer *w;
	int ret = store_blob_begin(s, &w);
	if (ret < 0)
		return ret;
	if ((ret = store_blob_write_fd(w, fd)) < 0) {
		store_blob_abort(w);
		return ret;
	}
	return store_blob_commit(w, expect, actual);
}

int store_put_blob_buffer(struct store *s, const void *data, size_t len, unsigned char actual[32])
{
	struct store_blob_writer *w;
	int ret = store_blob_begin(s, &w);
	if (ret < 0)
		return ret;
	if ((ret = store_blob_write(w, data, len)) < 0) {
		store_blob_abort(w);
		return ret;
	}
	return store_blob_commit(w, NULL, actual);
}

int store_blob_size(struct store *s, const unsigned char sha[32], uint64_t *size)
{
	char rel[3 + DIGEST_HEX_SIZE];
	struct stat st;
	blob_rel_path(sha, rel);
	if (fstatat(s->cas_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	*size = (uint64_t)st.st_size;
	return 0;
}

int store_has_blob(struct store *s, const unsigned char sha[32])
{
	uint64_t size;
	int ret = store_blob_size(s, sha, &size);
	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

static int open_blob(struct store *s, const unsigned char sha[32], int flags)
{
	char rel[3 + DIGEST_HEX_SIZE];
	blob_rel_path(sha, rel);
	/* O_NONBLOCK so that a FIFO planted in cas/ cannot hang the caller in open; it changes
	 * nothing for the regular file a blob is. */
	int fd = openat(s->cas_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | flags);
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = openat(s->cas_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int ret = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EBADMSG;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int store_open_blob(struct store *s, const unsigned char sha[32])
{
	return open_blob(s, sha, 0);
}

int store_open_blob_unused(struct store *s, const unsigned char sha[32])
{
	return open_blob(s, sha, O_NOATIME);
}

/* ---- Blob files (fsck, the mount) ---- */

/* The entries of cas/SUB, as store_foreach_blob_file. */
static int foreach_blob_file_in(struct store *s, const char sub[3],
                                int (*fn)(void *ctx, const struct store_blob_file *file), void *ctx)
{
	char rel[3 + DIGEST_HEX_SIZE + 256];
	struct store_blob_file file = { rel, NULL, 0 };
	int fd = openat(s->cas_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(rel, sizeof(rel), "%s", sub);
		file.error = -errno;
		return fn(ctx, &file);
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	int ret = 0;
	struct dirent *e;
	errno = 0;
	while (ret == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		unsigned char sha[32];
		snprintf(rel, sizeof(rel), "%s/%s", sub, e->d_name);
		file.sha256 = digest_hex_valid(e->d_name) && strncmp(e->d_name, sub, 2) == 0 &&
		              digest_from_hex(e->d_name, sha) == 0 ? sha : NULL;
		ret = fn(ctx, &file);
		errno = 0;
	}
	if (ret == 0 && errno)
		ret = -errno;
	closedir(d);
	return ret;
}

int store_foreach_blob_file(struct store *s,
                            int (*fn)(void *ctx, const struct store_blob_file *file), void *ctx)
{
	int ret = 0;
	for (unsigned i = 0; i < 256 && ret == 0; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		ret = foreach_blob_file_in(s, sub, fn, ctx);
	}
	return ret;
}

int store_count_temp_files(struct store *s)
{
	int fd = openat(s->dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < INT_MAX)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int store_statvfs(struct store *s, struct statvfs *out)
{
	return fstatvfs(s->cas_fd, out) < 0 ? -errno : 0;
}

/* ---- Manifests ---- */

static int get_value(struct store *s, const char key[INDEX_KEY_SIZE], char **value, size_t *len)
{
	char *err = NULL;
	size_t n = 0;
	char *v = rocksdb_get(s->db, s->read_options, key, INDEX_KEY_SIZE, &n, &err);
	if (err)
		return errno_of_rocksdb(err);
	if (!v)
		return -ENOENT;
	char *copy = malloc(n + 1);
	if (copy) {
		memcpy(copy, v, n);
		copy[n] = 0;
	}
	rocksdb_free(v);
	if (!copy)
		return -ENOMEM;
	*value = copy;
	*len = n;
	return 0;
}

/* Make the secondary see everything the writer had published when this process read BEFORE
 * from catch_ups_started. Nothing to do while the writer's count is the one the last catch-up
 * covers. If another thread STARTED a catch-up since, it has finished once we hold the lock and
 * covers us; otherwise we run one. Bursts thus cost one catch-up, not one each. */
static int catch_up_since(struct store *s, uint_fast64_t before)
{
	char *err = NULL;
	unsigned long long now = writes_now(s);
	if (now != NOT_CAUGHT_UP && now == atomic_load(&s->caught_up_to))
		return 0;
	pthread_mutex_lock(&s->catch_up_lock);
	if (atomic_load(&s->catch_ups_started) == before) {
		/* Read again under the lock: this catch-up covers the writes counted before it. */
		now = writes_now(s);
		if (now == NOT_CAUGHT_UP || now != atomic_load(&s->caught_up_to)) {
			atomic_fetch_add(&s->catch_ups_started, 1);
			rocksdb_try_catch_up_with_primary(s->db, &err);
			atomic_store(&s->caught_up_to, err ? NOT_CAUGHT_UP : now);
		}
	}
	pthread_mutex_unlock(&s->catch_up_lock);
	return err ? errno_of_rocksdb(err) : 0;
}

int store_catch_up(struct store *s)
{
	if (writer(s))
		return 0;
	return catch_up_since(s, atomic_load(&s->catch_ups_started));
}

/* The value of PREFIX+KEY_HEX in *TEXT; a miss on a reader catches up with the writer (it may
 * have written it since our last catch-up) and looks again. */
static int get_keyed(struct store *s, char prefix, const char key_hex[65], char **text, size_t *len)
{
	unsigned char key[32];
	char ikey[INDEX_KEY_SIZE];

	if (digest_from_hex(key_hex, key) < 0 || key_hex[64] != 0)
		return -EINVAL;
	index_key(ikey, prefix, key);
	uint_fast64_t before = atomic_load(&s->catch_ups_started);
	int ret = get_value(s, ikey, text, len);
	if (ret != -ENOENT || writer(s))
		return ret;
	/* A miss on a reader: the daemon may have published it since our last catch-up. */
	if ((ret = catch_up_since(s, before)) < 0)
		return ret;
	return get_value(s, ikey, text, len);
}

int store_get_manifest(struct store *s, const char key_hex[65], char **text, size_t *len)
{
	return get_keyed(s, PREFIX_ACTION, key_hex, text, len);
}

int store_parse_manifest(struct store *s, const char *text, size_t len, struct manifest *m)
{
	return manifest_verify(text, len, s->public_key, m);
}

int store_get_verified_manifest(struct store *s, const char key_hex[65], struct manifest *m,
                                char **text, size_t *len)
{
	char *t = NULL;
	size_t n = 0;
	int ret = store_get_manifest(s, key_hex, &t, &n);
	if (ret < 0)
		return ret;
	ret = store_parse_manifest(s, t, n, m);
	if (ret == 0 && strcmp(m->key, key_hex) != 0) {
		manifest_release(m);
		ret = -EBADMSG;
	}
	if (ret == 0 && text) {
		*text = t;
		*len = n;
		t = NULL;
	}
	free(t);
	return ret;
}

/* Blobs named by M, each once. */
static size_t named_blobs(const struct manifest *m, const unsigned char **shas, uint64_t *sizes)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n_outputs + 2; i++) {
		const unsigned char *sha = i < m->n_outputs ? m->outputs[i].sha256
		                           : i == m->n_outputs ? m->stdout_sha256 : m->stderr_sha256;
		uint64_t size = i < m->n_outputs ? m->outputs[i].size
		                : i == m->n_outputs ? m->stdout_size : m->stderr_size;
		size_t j;
		for (j = 0; j < n && memcmp(shas[j], sha, 32) != 0; j++)
			;
		if (j == n) {
			shas[n] = sha;
			sizes[n++] = size;
		}
	}
	return n;
}

int store_publish(struct store *s, const struct manifest *m)
{
	if (!writer(s))
		return -EROFS;
	int ret = manifest_validate(m);
	if (ret < 0)
		return ret;
	unsigned char key[32];
	char ikey[INDEX_KEY_SIZE], *old = NULL, *text = NULL, *err = NULL;
	size_t old_len = 0, text_len = 0;
	const unsigned char **shas = calloc(m->n_outputs + 2, sizeof(*shas));
	uint64_t *sizes = calloc(m->n_outputs + 2, sizeof(*sizes));
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	int locked = 0;
	ret = -ENOMEM;
	if (!shas || !sizes || !batch)
		goto out;
	size_t n = named_blobs(m, shas, sizes);
	if ((ret = digest_from_hex(m->key, key)) < 0)
		goto out;
	index_key(ikey, PREFIX_ACTION, key);
	pthread_mutex_lock(&s->publish_lock);
	locked = 1;
	int64_t now = (int64_t)time(NULL);
	/* Blobs first: every one present (durable since its commit) with the size M claims.
	 * Under the lock, which eviction holds from its decision to its unlinks: a blob checked
	 * here is not removed before the batch below gives it a reference. */
	for (size_t i = 0; i < n; i++) {
		uint64_t size;
		if ((ret = store_blob_size(s, shas[i], &size)) < 0)
			goto out;
		if (size != sizes[i]) {
			ret = -EBADMSG;
			goto out;
		}
	}
	ret = get_value(s, ikey, &old, &old_len);
	if (ret == 0) {
		struct manifest existing;
		ret = store_parse_manifest(s, old, old_len, &existing);
		if (ret == 0) {
			ret = manifest_same_result(&existing, m) ? 2 : 1;
			manifest_release(&existing);
		} else {
			ret = 1;    /* unreadable: still never overwritten */
		}
		if (ret == 1)
			atomic_fetch_add(&s->nondeterministic, 1);
		else
			for (size_t i = 0; i < n; i++)
				hold_release(s, shas[i], now);
		goto out;
	}
	if (ret != -ENOENT)
		goto out;
	if ((ret = manifest_sign(m, s->signing_key, &text, &text_len)) < 0)
		goto out;
	rocksdb_writebatch_put(batch, ikey, sizeof(ikey), text, text_len);
	{
		char ukey[INDEX_KEY_SIZE];
		unsigned char use[8];
		for (int b = 0; b < 8; b++)
			use[b] = (unsigned char)((uint64_t)now >> (8 * b));
		index_key(ukey, PREFIX_USE, key);
		rocksdb_writebatch_put(batch, ukey, sizeof(ukey), (const char *)use, sizeof(use));
	}
	for (size_t i = 0; i < n; i++) {
		char bkey[INDEX_KEY_SIZE], *v = NULL;
		size_t vlen = 0;
		struct store_blob_record rec = { sizes[i], 0, now };
		unsigned char value[BLOB_RECORD_SIZE];
		index_key(bkey, PREFIX_BLOB, shas[i]);
		if (get_value(s, bkey, &v, &vlen) == 0) {
			struct store_blob_record o;
			if (decode_record(v, vlen, &o) == 0)
				rec.refs = o.refs;
			free(v);
		}
		rec.refs++;
		encode_record(&rec, value);
		rocksdb_writebatch_put(batch, bkey, sizeof(bkey), (const char *)value, sizeof(value));
	}
	if ((ret = check_space(s, text_len + 4096 * (n + 1))) < 0)
		goto out;
	rocksdb_write(s->db, s->sync_write, batch, &err);
	count_write(s);
	if (err) {
		ret = errno_of_rocksdb_write(s, err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		hold_release(s, shas[i], now);
	atomic_fetch_add(&s->published, 1);
	ret = 0;
out:
	if (locked)
		pthread_mutex_unlock(&s->publish_lock);
	if (batch)
		rocksdb_writebatch_destroy(batch);
	free(text);
	free(old);
	free(shas);
	free(sizes);
	return ret;
}

/* ---- Pre-key lists ---- */

int store_add_prekey_list(struct store *s, const char prekey_hex[65], json_t *list)
{
	unsigned char prekey[32];
	char ikey[INDEX_KEY_SIZE], *old = NULL, *text = NULL, *err = NULL;
	size_t old_len = 0, text_len = 0;
	json_t *lists = NULL, *merged = NULL;
	int ret, changed = 1;

	if (!writer(s))
		return -EROFS;
	if (digest_from_hex(prekey_hex, prekey) < 0 || prekey_hex[64] != 0 || !prekey_list_valid(list))
		return -EINVAL;
	index_key(ikey, PREFIX_PREKEY, prekey);
	pthread_mutex_lock(&s->publish_lock);
	ret = get_value(s, ikey, &old, &old_len);
	if (ret == 0 && prekey_lists_verify(old, old_len, s->public_key, prekey_hex, &lists) < 0)
		lists = NULL;   /* unreadable: replaced */
	if (ret < 0 && ret != -ENOENT)
		goto out;
	ret = -ENOMEM;
	merged = prekey_lists_add(lists, list, &changed);
	if (!merged)
		goto out;
	ret = 2;
	if (!changed)
		goto out;
	if ((ret = prekey_lists_sign(prekey_hex, merged, s->signing_key, &text, &text_len)) < 0)
		goto out;
	if ((ret = check_space(s, text_len + 4096)) < 0)
		goto out;
	rocksdb_put(s->db, s->async_write, ikey, sizeof(ikey), text, text_len, &err);
	count_write(s);
	ret = err ? errno_of_rocksdb_write(s, err) : 0;
out:
	pthread_mutex_unlock(&s->publish_lock);
	json_decref(lists);
	json_decref(merged);
	free(old);
	free(text);
	return ret;
}

int store_get_prekey_lists(struct store *s, const char prekey_hex[65], char **text, size_t *len)
{
	return get_keyed(s, PREFIX_PREKEY, prekey_hex, text, len);
}

/* Call FN for the records of PREFIX in order, those after AFTER (32 bytes) only when it is
 * not NULL: one seek, so a walk can be resumed where it stopped. */
static int foreach_prefix_after(struct store *s, char prefix, const unsigned char *after,
                                int (*fn)(void *ctx, const unsigned char bytes[32], const char *v,
                                          size_t vlen),
                                void *ctx)
{
	rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, s->read_options);
	if (!it)
		return -ENOMEM;
	int ret = 0;
	char start[INDEX_KEY_SIZE];
	start[0] = prefix;
	if (after)
		memcpy(start + 1, after, 32);
	for (rocksdb_iter_seek(it, start, after ? INDEX_KEY_SIZE : 1); rocksdb_iter_valid(it);
	     rocksdb_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const char *k = rocksdb_iter_key(it, &klen);
		const char *v = rocksdb_iter_value(it, &vlen);
		if (klen < 1 || k[0] != prefix)
			break;
		if (klen != INDEX_KEY_SIZE)
			continue;
		if (after && memcmp(k, start, INDEX_KEY_SIZE) == 0)
			continue;   /* strictly after */
		if ((ret = fn(ctx, (const unsigned char *)k + 1, v, vlen)) != 0)
			break;
	}
	if (ret == 0) {
		char *err = NULL;
		rocksdb_iter_get_error(it, &err);
		if (err)
			ret = errno_of_rocksdb(err);
	}
	rocksdb_iter_destroy(it);
	return ret;
}

static int foreach_prefix(struct store *s, char prefix,
                          int (*fn)(void *ctx, const unsigned char bytes[32], const char *v,
                                    size_t vlen),
                          void *ctx)
{
	return foreach_prefix_after(s, prefix, NULL, fn, ctx);
}

struct manifest_walk {
	int (*fn)(void *ctx, const char key_hex[65], const char *text, size_t len);
	void *ctx;
};

static int manifest_walk_step(void *ctx, const unsigned char bytes[32], const char *v, size_t vlen)
{
	struct manifest_walk *walk = ctx;
	char hex[DIGEST_HEX_SIZE];
	digest_to_hex(bytes, hex);
	return walk->fn(walk->ctx, hex, v, vlen);
}

int store_foreach_manifest(struct store *s,
                           int (*fn)(void *ctx, const char key_hex[65], const char *text, size_t len),
                           void *ctx)
{
	struct manifest_walk walk = { fn, ctx };
	return foreach_prefix(s, PREFIX_ACTION, manifest_walk_step, &walk);
}

int store_foreach_manifest_after(struct store *s, const unsigned char *after,
                                 int (*fn)(void *ctx, const char key_hex[65], const char *text,
                                           size_t len),
                                 void *ctx)
{
	struct manifest_walk walk = { fn, ctx };
	return foreach_prefix_after(s, PREFIX_ACTION, after, manifest_walk_step, &walk);
}

struct blob_walk {
	int (*fn)(void *ctx, const unsigned char sha256[32], const struct store_blob_record *rec);
	void *ctx;
};

static int blob_walk_step(void *ctx, const unsigned char bytes[32], const char *v, size_t vlen)
{
	struct blob_walk *walk = ctx;
	struct store_blob_record rec;
	if (decode_record(v, vlen, &rec) < 0)
		rec.size = rec.refs = 0, rec.last_use = -1;   /* malformed: shown as such */
	return walk->fn(walk->ctx, bytes, &rec);
}

int store_foreach_blob_record(struct store *s,
                              int (*fn)(void *ctx, const unsigned char sha256[32],
                                        const struct store_blob_record *rec),
                              void *ctx)
{
	struct blob_walk walk = { fn, ctx };
	return foreach_prefix(s, PREFIX_BLOB, blob_walk_step, &walk);
}

int store_foreach_blob_record_after(struct store *s, const unsigned char *after,
                                    int (*fn)(void *ctx, const unsigned char sha256[32],
                                              const struct store_blob_record *rec),
                                    void *ctx)
{
	struct blob_walk walk = { fn, ctx };
	return foreach_prefix_after(s, PREFIX_BLOB, after, blob_walk_step, &walk);
}

int store_get_blob_record(struct store *s, const unsigned char sha[32], struct store_blob_record *rec)
{
	char key[INDEX_KEY_SIZE], *v = NULL;
	size_t len = 0;
	index_key(key, PREFIX_BLOB, sha);
	int ret = get_value(s, key, &v, &len);
	if (ret < 0)
		return ret;
	ret = decode_record(v, len, rec);
	free(v);
	return ret;
}

int store_blob_published(struct store *s, const unsigned char sha[32])
{
	struct store_blob_record rec;
	uint_fast64_t before = atomic_load(&s->catch_ups_started);
	int ret = store_get_blob_record(s, sha, &rec);
	if (!writer(s) && (ret == -ENOENT || (ret == 0 && rec.refs == 0))) {
		/* Not named yet as far as this reader knows: the daemon may have published a
		 * manifest naming it since our last catch-up. */
		if ((ret = catch_up_since(s, before)) < 0)
			return ret;
		ret = store_get_blob_record(s, sha, &rec);
	}
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	return rec.refs > 0;
}

void store_get_counters(struct store *s, struct store_counters *c)
{
	c->nondeterministic = atomic_load(&s->nondeterministic);
	c->published = atomic_load(&s->published);
	c->blobs_written = atomic_load(&s->blobs_written);
	c->bytes_written = atomic_load(&s->bytes_written);
	c->keys_evicted = atomic_load(&s->keys_evicted);
	c->blobs_removed = atomic_load(&s->blobs_removed);
	c->bytes_freed = atomic_load(&s->bytes_freed);
	c->catch_ups = atomic_load(&s->catch_ups_started);
}

/* ---- Use, pins and eviction ----
 * Eviction takes publish_lock from its decision to its last unlink, and so does every publish
 * from its check that the blobs are there to its batch: a publish that checked a blob sees it
 * referenced in the index before an eviction can look at it, and an eviction's unlinks are done
 * before a publish checks. A blob committed by this process and not yet named by a manifest is
 * held (hold_add) and keeps its file when the last key naming it is evicted. */

static void encode_u64(uint64_t v, unsigned char out[8])
{
	for (int b = 0; b < 8; b++)
		out[b] = (unsigned char)(v >> (8 * b));
}

static uint64_t decode_u64(const char *p)
{
	uint64_t v = 0;
	for (int b = 0; b < 8; b++)
		v |= (uint64_t)(unsigned char)p[b] << (8 * b);
	return v;
}

static int key_index(const char key_hex[65], char prefix, char out[INDEX_KEY_SIZE])
{
	unsigned char key[32];
	if (digest_from_hex(key_hex, key) < 0 || key_hex[64] != 0)
		return -EINVAL;
	index_key(out, prefix, key);
	return 0;
}

/* 0 present, -ENOENT absent, -errno. */
static int value_present(struct store *s, const char *key, size_t key_len)
{
	char *err = NULL;
	size_t n = 0;
	char *v = rocksdb_get(s->db, s->read_options, key, key_len, &n, &err);
	if (err)
		return errno_of_rocksdb(err);
	rocksdb_free(v);
	return v ? 0 : -ENOENT;
}

int store_key_last_use(struct store *s, const char key_hex[65], int64_t *last_use)
{
	char ukey[INDEX_KEY_SIZE], *v = NULL;
	size_t len = 0;
	int ret = key_index(key_hex, PREFIX_USE, ukey);
	if (ret == 0)
		ret = get_value(s, ukey, &v, &len);
	if (ret == 0 && len != 8)
		ret = -EBADMSG;
	if (ret == 0)
		*last_use = (int64_t)decode_u64(v);
	free(v);
	return ret;
}

int store_touch_key(struct store *s, const char key_hex[65], int64_t now)
{
	char akey[INDEX_KEY_SIZE], ukey[INDEX_KEY_SIZE], *err = NULL;
	int64_t last = 0;
	unsigned char value[8];
	if (!writer(s))
		return -EROFS;
	int ret = key_index(key_hex, PREFIX_ACTION, akey);
	if (ret < 0)
		return ret;
	index_key(ukey, PREFIX_USE, (const unsigned char *)akey + 1);
	ret = store_key_last_use(s, key_hex, &last);
	/* A record later than NOW (the clock stepped back) is corrected, not kept as recent. */
	if (ret == 0 && last > now - STORE_TOUCH_SECONDS && last <= now)
		return 1;
	pthread_mutex_lock(&s->publish_lock);
	/* Only a key that is there: a touch racing an eviction must not leave a stray record. */
	ret = value_present(s, akey, sizeof(akey));
	if (ret == 0)
		ret = check_space(s, 4096);
	if (ret == 0) {
		encode_u64((uint64_t)now, value);
		rocksdb_put(s->db, s->async_write, ukey, sizeof(ukey), (const char *)value,
		            sizeof(value), &err);
		count_write(s);
		ret = err ? errno_of_rocksdb_write(s, err) : 0;
	}
	pthread_mutex_unlock(&s->publish_lock);
	return ret;
}

int store_set_pin(struct store *s, const char key_hex[65], int pinned)
{
	char akey[INDEX_KEY_SIZE], nkey[INDEX_KEY_SIZE], *err = NULL;
	if (!writer(s))
		return -EROFS;
	int ret = key_index(key_hex, PREFIX_ACTION, akey);
	if (ret < 0)
		return ret;
	index_key(nkey, PREFIX_PIN, (const unsigned char *)akey + 1);
	pthread_mutex_lock(&s->publish_lock);
	ret = pinned ? value_present(s, akey, sizeof(akey)) : 0;
	if (ret == 0 && pinned)
		ret = check_space(s, 4096);
	if (ret == 0) {
		if (pinned)
			rocksdb_put(s->db, s->sync_write, nkey, sizeof(nkey), "", 0, &err);
		else
			rocksdb_delete(s->db, s->sync_write, nkey, sizeof(nkey), &err);
		count_write(s);
		ret = err ? errno_of_rocksdb_write(s, err) : 0;
	}
	pthread_mutex_unlock(&s->publish_lock);
	return ret;
}

int store_key_pinned(struct store *s, const char key_hex[65])
{
	char nkey[INDEX_KEY_SIZE];
	int ret = key_index(key_hex, PREFIX_PIN, nkey);
	if (ret < 0)
		return ret;
	ret = value_present(s, nkey, sizeof(nkey));
	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

int store_eviction_generation(struct store *s, uint64_t *generation)
{
	char *v = NULL;
	size_t len = 0;
	char *err = NULL;
	v = rocksdb_get(s->db, s->read_options, GENERATION_KEY, 1, &len, &err);
	if (err)
		return errno_of_rocksdb(err);
	*generation = v && len == 8 ? decode_u64(v) : 0;
	rocksdb_free(v);
	return 0;
}

int store_blob_atime(struct store *s, const unsigned char sha[32], int64_t *atime)
{
	char rel[3 + DIGEST_HEX_SIZE];
	struct stat st;
	blob_rel_path(sha, rel);
	if (fstatat(s->cas_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	*atime = (int64_t)st.st_atim.tv_sec;
	return 0;
}

/* Unlink the files of the blobs in SHAS whose record the batch just removed; add up what was
 * freed. A file already gone counts nothing. Under publish_lock. */
static void unlink_blobs(struct store *s, const unsigned char **shas, const uint64_t *sizes,
                         size_t n, struct store_eviction *out)
{
	for (size_t i = 0; i < n; i++) {
		char rel[3 + DIGEST_HEX_SIZE];
		blob_rel_path(shas[i], rel);
		if (unlinkat(s->cas_fd, rel, 0) < 0)
			continue;
		out->blobs_removed++;
		out->bytes_freed += sizes[i];
	}
	atomic_fetch_add(&s->blobs_removed, out->blobs_removed);
	atomic_fetch_add(&s->bytes_freed, out->bytes_freed);
}

static void bump_generation(struct store *s, rocksdb_writebatch_t *batch)
{
	uint64_t g = 0;
	unsigned char value[8];
	if (store_eviction_generation(s, &g) < 0)
		g = 0;
	encode_u64(g + 1, value);
	rocksdb_writebatch_put(batch, GENERATION_KEY, 1, (const char *)value, sizeof(value));
}

/* A blob record as the batch being built leaves it. */
struct pending_record {
	unsigned char sha[32];
	struct store_blob_record rec;
	int removed;
};

/* KEY_HEX's part of an eviction batch: the manifest and its use record deleted, each named
 * blob's record lowered in PENDING (grown as needed). 0, or what store_evict_keys reports. */
static int evict_one(struct store *s, const char key_hex[65], rocksdb_writebatch_t *batch,
                     struct pending_record **pending, size_t *n_pending, size_t *cap_pending,
                     int64_t now)
{
	char akey[INDEX_KEY_SIZE], ukey[INDEX_KEY_SIZE], nkey[INDEX_KEY_SIZE], *text = NULL;
	size_t text_len = 0;
	const unsigned char **shas = NULL;
	uint64_t *sizes = NULL;
	struct manifest m;
	int ret = key_index(key_hex, PREFIX_ACTION, akey);
	if (ret < 0)
		return ret;
	index_key(ukey, PREFIX_USE, (const unsigned char *)akey + 1);
	index_key(nkey, PREFIX_PIN, (const unsigned char *)akey + 1);
	if ((ret = get_value(s, akey, &text, &text_len)) < 0)
		return ret;
	if ((ret = value_present(s, nkey, sizeof(nkey))) != -ENOENT) {
		free(text);
		return ret == 0 ? -EPERM : ret;
	}
	/* Its blobs are known only from a manifest that verifies; another is left for fsck. */
	ret = store_parse_manifest(s, text, text_len, &m);
	free(text);
	if (ret < 0)
		return ret;
	ret = -ENOMEM;
	shas = calloc(m.n_outputs + 2, sizeof(*shas));
	sizes = calloc(m.n_outputs + 2, sizeof(*sizes));
	if (!shas || !sizes)
		goto out;
	size_t n = named_blobs(&m, shas, sizes);
	if (*n_pending + n > *cap_pending) {
		size_t cap = (*n_pending + n) * 2;
		struct pending_record *p = reallocarray(*pending, cap, sizeof(*p));
		if (!p)
			goto out;
		*pending = p;
		*cap_pending = cap;
	}
	rocksdb_writebatch_delete(batch, akey, sizeof(akey));
	/* With it go the records keyed by it: its use, its job record ('j') and verify mark ('v'),
	 * the last two of "Job records and verify marks" below. Its pin is kept by definition. */
	static const char keyed[] = { PREFIX_USE, 'j', 'v' };
	for (size_t i = 0; i < sizeof(keyed); i++) {
		ukey[0] = keyed[i];
		rocksdb_writebatch_delete(batch, ukey, sizeof(ukey));
	}
	for (size_t i = 0; i < n; i++) {
		struct pending_record *p = NULL;
		for (size_t j = 0; j < *n_pending && !p; j++)
			if (memcmp((*pending)[j].sha, shas[i], 32) == 0)
				p = &(*pending)[j];
		if (!p) {
			struct store_blob_record rec;
			if (store_get_blob_record(s, shas[i], &rec) < 0)
				continue;     /* no record to lower: fsck's to report */
			p = &(*pending)[(*n_pending)++];
			memcpy(p->sha, shas[i], 32);
			p->rec = rec;
			p->removed = 0;
		}
		if (p->rec.refs > 0)
			p->rec.refs--;
		p->removed = p->rec.refs == 0 && !hold_find(s, shas[i], now);
	}
	ret = 0;
out:
	manifest_release(&m);
	free(shas);
	free(sizes);
	return ret;
}

int store_evict_keys(struct store *s, const char (*keys)[65], size_t n_keys, int *results,
                     struct store_eviction *out)
{
	struct pending_record *pending = NULL;
	size_t n_pending = 0, cap_pending = 0, evicted = 0;
	char *err = NULL;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!writer(s))
		return -EROFS;
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	if (!batch)
		return -ENOMEM;
	pthread_mutex_lock(&s->publish_lock);
	int64_t now = (int64_t)time(NULL);
	for (size_t k = 0; k < n_keys; k++) {
		results[k] = evict_one(s, keys[k], batch, &pending, &n_pending, &cap_pending, now);
		if (results[k] == -ENOMEM || results[k] == -EIO) {
			ret = results[k];
			goto out;
		}
		if (results[k] == 0)
			evicted++;
	}
	if (evicted == 0)
		goto out;
	for (size_t i = 0; i < n_pending; i++) {
		char bkey[INDEX_KEY_SIZE];
		unsigned char value[BLOB_RECORD_SIZE];
		index_key(bkey, PREFIX_BLOB, pending[i].sha);
		if (pending[i].removed) {
			rocksdb_writebatch_delete(batch, bkey, sizeof(bkey));
		} else {
			encode_record(&pending[i].rec, value);
			rocksdb_writebatch_put(batch, bkey, sizeof(bkey), (const char *)value,
			                       sizeof(value));
		}
	}
	bump_generation(s, batch);
	/* The keys leave the index whole, synced, before any of their files goes. */
	rocksdb_write(s->db, s->sync_write, batch, &err);
	count_write(s);
	if (err) {
		ret = errno_of_rocksdb_write(s, err);
		goto out;
	}
	for (size_t i = 0; i < n_pending; i++) {
		char rel[3 + DIGEST_HEX_SIZE];
		if (!pending[i].removed)
			continue;
		blob_rel_path(pending[i].sha, rel);
		if (unlinkat(s->cas_fd, rel, 0) < 0)
			continue;     /* already gone: nothing freed */
		out->blobs_removed++;
		out->bytes_freed += pending[i].rec.size;
	}
	atomic_fetch_add(&s->keys_evicted, evicted);
	atomic_fetch_add(&s->blobs_removed, out->blobs_removed);
	atomic_fetch_add(&s->bytes_freed, out->bytes_freed);
out:
	pthread_mutex_unlock(&s->publish_lock);
	rocksdb_writebatch_destroy(batch);
	free(pending);
	return ret;
}

int store_evict_key(struct store *s, const char key_hex[65], struct store_eviction *out)
{
	char keys[1][65];
	int result = 0;
	if (strnlen(key_hex, 65) != 64)
		return -EINVAL;
	memcpy(keys[0], key_hex, 65);
	int ret = store_evict_keys(s, (const char (*)[65])keys, 1, &result, out);
	return ret < 0 ? ret : result;
}

int store_remove_orphan_blob(struct store *s, const unsigned char sha[32], int64_t unused_before,
                             struct store_eviction *out)
{
	char bkey[INDEX_KEY_SIZE], *err = NULL;
	struct store_blob_record rec;
	memset(out, 0, sizeof(*out));
	if (!writer(s))
		return -EROFS;
	index_key(bkey, PREFIX_BLOB, sha);
	pthread_mutex_lock(&s->publish_lock);
	int ret = store_get_blob_record(s, sha, &rec);
	if (ret == 0 && (rec.refs > 0 || rec.last_use >= unused_before ||
	                 hold_find(s, sha, (int64_t)time(NULL))))
		ret = 1;
	if (ret == 0) {
		rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
		ret = -ENOMEM;
		if (batch) {
			rocksdb_writebatch_delete(batch, bkey, sizeof(bkey));
			bump_generation(s, batch);
			rocksdb_write(s->db, s->sync_write, batch, &err);
			count_write(s);
			ret = err ? errno_of_rocksdb_write(s, err) : 0;
			rocksdb_writebatch_destroy(batch);
		}
	}
	if (ret == 0) {
		const unsigned char *one[1] = { sha };
		uint64_t size[1] = { rec.size };
		unlink_blobs(s, one, size, 1, out);
	}
	pthread_mutex_unlock(&s->publish_lock);
	return ret == 1 ? 0 : ret < 0 ? ret : 1;
}

int store_remove_unrecorded_blob(struct store *s, const unsigned char sha[32],
                                 int64_t written_before, int dry_run, struct store_eviction *out)
{
	char rel[3 + DIGEST_HEX_SIZE];
	struct store_blob_record rec;
	struct stat st;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!writer(s))
		return -EROFS;
	blob_rel_path(sha, rel);
	pthread_mutex_lock(&s->publish_lock);
	ret = store_get_blob_record(s, sha, &rec);
	if (ret == 0) {
		ret = 0;   /* recorded: the other passes decide */
	} else if (ret == -ENOENT) {
		ret = 0;
		if (fstatat(s->cas_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
			ret = errno == ENOENT ? 0 : -errno;
		else if (S_ISREG(st.st_mode) && (int64_t)st.st_mtim.tv_sec < written_before &&
		         !hold_find(s, sha, (int64_t)time(NULL))) {
			const unsigned char *one[1] = { sha };
			uint64_t size[1] = { (uint64_t)st.st_size };
			if (dry_run)
				*out = (struct store_eviction){ 1, (uint64_t)st.st_size };
			else
				unlink_blobs(s, one, size, 1, out);
			ret = out->blobs_removed ? 1 : 0;
		}
	}
	pthread_mutex_unlock(&s->publish_lock);
	return ret;
}

/* ---- The daemon's trees ---- */

struct store_trees {
	char *dir;                 /* the path the store was opened at */
	int toolchains_fd;
	int jobs_fd;
};

/* Create NAME beneath DIRFD when missing (0700 until it is set), open it and give it GID (-1:
 * unchanged) and MODE, whatever the umask and whatever they were. */
static int open_shared_dir(int dirfd, const char *name, gid_t gid, mode_t mode)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int store_trees_open(struct store *s, const char *dir, gid_t jobs_gid, struct store_trees **out)
{
	struct store_trees *t;
	int ret;

	*out = NULL;
	if (!writer(s))
		return -EROFS;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->jobs_fd = -1;
	t->dir = strdup(dir);
	t->toolchains_fd = open_shared_dir(s->dir_fd, "toolchains", (gid_t)-1, 0755);
	if (!t->dir || t->toolchains_fd < 0) {
		ret = t->dir ? t->toolchains_fd : -ENOMEM;
		goto fail;
	}
	t->jobs_fd = open_shared_dir(s->dir_fd, "jobs", jobs_gid, 0710);
	if (t->jobs_fd < 0) {
		ret = t->jobs_fd;
		goto fail;
	}
	*out = t;
	return 0;
fail:
	store_trees_close(t);
	return ret;
}

void store_trees_close(struct store_trees *t)
{
	if (!t)
		return;
	if (t->toolchains_fd >= 0)
		close(t->toolchains_fd);
	if (t->jobs_fd >= 0)
		close(t->jobs_fd);
	free(t->dir);
	free(t);
}

int store_toolchains_fd(const struct store_trees *t)
{
	return t->toolchains_fd;
}

char *store_toolchain_path(const struct store_trees *t, const char id[65])
{
	char *path;

	return asprintf(&path, "%s/toolchains/%s", t->dir, id) < 0 ? NULL : path;
}

int store_job_scratch_create(struct store_trees *t, uint64_t seq, struct store_job_scratch *js)
{
	int ret;

	memset(js, 0, sizeof(*js));
	js->dir_fd = js->input_fd = -1;
	snprintf(js->name, sizeof(js->name), "j%ld-%llu", (long)getpid(), (unsigned long long)seq);
	if (mkdirat(t->jobs_fd, js->name, 0755) < 0) {
		ret = -errno;
		js->name[0] = '\0';       /* not made here: nothing to remove */
		return ret;
	}
	js->dir_fd = openat(t->jobs_fd, js->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (js->dir_fd < 0 || mkdirat(js->dir_fd, "root", 0755) < 0
	    || mkdirat(js->dir_fd, "out", 0755) < 0)
		return -errno;
	ret = path_walk(js->dir_fd, "root/cachepot", 1, &js->input_fd, NULL);
	if (ret < 0)
		return ret;
	if (mkdirat(js->input_fd, "out", 0755) < 0)
		return -errno;
	if (asprintf(&js->input_path, "%s/jobs/%s/root/cachepot", t->dir, js->name) < 0) {
		js->input_path = NULL;
		return -ENOMEM;
	}
	if (asprintf(&js->output_path, "%s/jobs/%s/out", t->dir, js->name) < 0) {
		js->output_path = NULL;
		return -ENOMEM;
	}
	return 0;
}

int store_job_scratch_remove(struct store_trees *t, struct store_job_scratch *js)
{
	int ret = 0;

	if (js->input_fd >= 0)
		close(js->input_fd);
	if (js->dir_fd >= 0)
		close(js->dir_fd);
	if (js->name[0])
		ret = tree_remove_at(t->jobs_fd, js->name);
	free(js->input_path);
	free(js->output_path);
	js->input_path = js->output_path = NULL;
	js->dir_fd = js->input_fd = -1;
	return ret;
}

int store_sweep_jobs(struct store_trees *t, unsigned *removed)
{
	int fd = openat(t->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	int ret = 0;
	DIR *dir;

	*removed = 0;
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((e = readdir(dir))) {
		int r;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = tree_remove_at(dirfd(dir), e->d_name);
		if (r < 0)
			ret = r;
		else
			(*removed)++;
	}
	closedir(dir);
	return ret;
}

/* ---- Job records and verify marks (daemon/verify.h) ----
 * Two more prefixes of the one column family, each keyed by an action key:
 *   'j' + key -> the wire job JSON (hash/job.h) the daemon built and published KEY from, so that
 *                it can rebuild KEY later on demand; written without sync (a record lost in a
 *                crash costs only that on-demand check)
 *   'v' + key -> a verify mark: JSON naming the outputs a rebuild of KEY produced differently,
 *                written with sync. The published manifest of KEY is never touched: a mark only
 *                says that KEY does not build reproducibly. */
#define PREFIX_JOB_RECORD 'j'
#define PREFIX_VERIFY_MARK 'v'

static int put_keyed(struct store *s, char prefix, const char key_hex[65], const char *text,
                     size_t len, int sync)
{
	unsigned char key[32];
	char ikey[INDEX_KEY_SIZE], *err = NULL;

	if (!writer(s))
		return -EROFS;
	if (digest_from_hex(key_hex, key) < 0 || key_hex[64] != 0)
		return -EINVAL;
	index_key(ikey, prefix, key);
	int ret = check_space(s, len + 4096);   /* RocksDB must not meet ENOSPC (check_space) */
	if (ret < 0)
		return ret;
	rocksdb_put(s->db, sync ? s->sync_write : s->async_write, ikey, sizeof(ikey), text, len, &err);
	count_write(s);
	return err ? errno_of_rocksdb_write(s, err) : 0;
}

int store_put_job_record(struct store *s, const char key_hex[65], const char *text, size_t len)
{
	return put_keyed(s, PREFIX_JOB_RECORD, key_hex, text, len, 0);
}

int store_get_job_record(struct store *s, const char key_hex[65], char **text, size_t *len)
{
	return get_keyed(s, PREFIX_JOB_RECORD, key_hex, text, len);
}

int store_put_verify_mark(struct store *s, const char key_hex[65], const char *text, size_t len)
{
	char *old = NULL;
	size_t old_len = 0;
	int ret;

	if (!writer(s))
		return -EROFS;
	/* The first evidence stays: a mark, like a key, is written once. */
	pthread_mutex_lock(&s->publish_lock);
	ret = get_keyed(s, PREFIX_VERIFY_MARK, key_hex, &old, &old_len);
	if (ret == 0)
		ret = 2;
	else if (ret == -ENOENT)
		ret = put_keyed(s, PREFIX_VERIFY_MARK, key_hex, text, len, 1);
	pthread_mutex_unlock(&s->publish_lock);
	free(old);
	return ret;
}

int store_get_verify_mark(struct store *s, const char key_hex[65], char **text, size_t *len)
{
	return get_keyed(s, PREFIX_VERIFY_MARK, key_hex, text, len);
}

int store_foreach_verify_mark(struct store *s,
                              int (*fn)(void *ctx, const char key_hex[65], const char *text, size_t len),
                              void *ctx)
{
	struct manifest_walk walk = { fn, ctx };
	return foreach_prefix(s, PREFIX_VERIFY_MARK, manifest_walk_step, &walk);
}

/* ---- Bulk loading (store-tool synth --bulk) ----
 * The same files and the same index records as store_put_blob_buffer and store_publish, without
 * a sync per blob and per key: a blob goes through tmp/ into cas/ with no fsync of it or of its
 * directory, and a batch of manifests is one index write without the write-ahead log.
 * store_bulk_sync then makes it all durable with one syncfs and one flush of the index. Nothing
 * here orders blobs before keys across a crash, so this is for making a store nobody uses yet
 * (benchmarks of a million keys), never for the daemon's publishing. */

int store_bulk_put_blob(struct store *s, const void *data, size_t len, unsigned char actual[32])
{
	char rel[3 + DIGEST_HEX_SIZE], tmp[40];
	unsigned char r[8];
	struct stat st;
	if (!writer(s))
		return -EROFS;
	int ret = digest_buffer(data, len, actual);
	if (ret < 0)
		return ret;
	blob_rel_path(actual, rel);
	if (fstatat(s->cas_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if ((ret = check_space(s, len + 4096)) < 0)
		return ret;
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return -EIO;
	snprintf(tmp, sizeof(tmp), "bulk-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
	         r[4], r[5], r[6], r[7]);
	int fd = openat(s->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	ret = io_write_all(fd, data, len);
	if (ret == 0 && fchmod(fd, 0444) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && renameat2(s->tmp_fd, tmp, s->cas_fd, rel, RENAME_NOREPLACE) < 0 &&
	    errno != EEXIST)
		ret = -errno;
	unlinkat(s->tmp_fd, tmp, 0);   /* ENOENT once renamed */
	if (ret == 0) {
		atomic_fetch_add(&s->blobs_written, 1);
		atomic_fetch_add(&s->bytes_written, len);
	}
	return ret;
}

/* A blob named by a manifest of the batch, or an action key of it (size unused). */
struct bulk_name { unsigned char sha[32]; uint64_t size; size_t index; };

static int bulk_name_cmp(const void *a, const void *b)
{
	const struct bulk_name *x = a, *y = b;
	int c = memcmp(x->sha, y->sha, 32);
	return c ? c : x->index < y->index ? -1 : x->index > y->index;
}

int store_bulk_publish(struct store *s, const struct manifest *ms, size_t n,
                       const int64_t *last_use, int *results)
{
	if (!writer(s))
		return -EROFS;
	size_t cap = 0, n_blobs = 0, bytes = 0, published = 0;
	for (size_t i = 0; i < n; i++)
		if (__builtin_add_overflow(cap, ms[i].n_outputs + 2, &cap))
			return -EINVAL;
	struct bulk_name *keys = calloc(n ? n : 1, sizeof(*keys));
	struct bulk_name *blobs = calloc(cap ? cap : 1, sizeof(*blobs));
	const unsigned char **shas = calloc(MANIFEST_MAX_OUTPUTS + 2, sizeof(*shas));
	uint64_t *sizes = calloc(MANIFEST_MAX_OUTPUTS + 2, sizeof(*sizes));
	rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
	rocksdb_writeoptions_t *no_wal = rocksdb_writeoptions_create();
	int64_t now = (int64_t)time(NULL);
	char *err = NULL;
	int ret = -ENOMEM;
	if (!keys || !blobs || !shas || !sizes || !batch || !no_wal)
		goto out;
	rocksdb_writeoptions_disable_WAL(no_wal, 1);
	for (size_t i = 0; i < n; i++) {
		results[i] = manifest_validate(&ms[i]);
		if (results[i] == 0)
			results[i] = digest_from_hex(ms[i].key, keys[i].sha);
		keys[i].index = i;
	}
	/* A key twice in the batch: the first one counts. */
	qsort(keys, n, sizeof(*keys), bulk_name_cmp);
	for (size_t i = 1; i < n; i++)
		if (memcmp(keys[i].sha, keys[i - 1].sha, 32) == 0 && results[keys[i].index] == 0)
			results[keys[i].index] = -EEXIST;
	pthread_mutex_lock(&s->publish_lock);
	for (size_t k = 0; k < n; k++) {
		size_t i = keys[k].index;
		const struct manifest *m = &ms[i];
		char ikey[INDEX_KEY_SIZE], ukey[INDEX_KEY_SIZE], *text = NULL;
		size_t text_len = 0;
		unsigned char use[8];
		if (results[i] < 0)
			continue;
		index_key(ikey, PREFIX_ACTION, keys[k].sha);
		if ((results[i] = value_present(s, ikey, sizeof(ikey))) != -ENOENT) {
			if (results[i] == 0)
				results[i] = -EEXIST;
			continue;
		}
		/* As store_publish: every blob present with the size M gives. */
		size_t nb = named_blobs(m, shas, sizes);
		results[i] = 0;
		for (size_t b = 0; b < nb && results[i] == 0; b++) {
			uint64_t size;
			results[i] = store_blob_size(s, shas[b], &size);
			if (results[i] == 0 && size != sizes[b])
				results[i] = -EBADMSG;
		}
		if (results[i] == 0)
			results[i] = manifest_sign(m, s->signing_key, &text, &text_len);
		if (results[i] < 0)
			continue;
		rocksdb_writebatch_put(batch, ikey, sizeof(ikey), text, text_len);
		free(text);
		encode_u64((uint64_t)(last_use ? last_use[i] : now), use);
		index_key(ukey, PREFIX_USE, keys[k].sha);
		rocksdb_writebatch_put(batch, ukey, sizeof(ukey), (const char *)use, sizeof(use));
		for (size_t b = 0; b < nb; b++) {
			memcpy(blobs[n_blobs].sha, shas[b], 32);
			blobs[n_blobs].size = sizes[b];
			blobs[n_blobs].index = n_blobs;
			n_blobs++;
		}
		bytes += text_len + 2 * INDEX_KEY_SIZE + 8;
		published++;
	}
	/* Each blob's record once, its refs raised by the number of keys of the batch naming it. */
	qsort(blobs, n_blobs, sizeof(*blobs), bulk_name_cmp);
	for (size_t b = 0, e; b < n_blobs; b = e) {
		char bkey[INDEX_KEY_SIZE], *v = NULL;
		size_t vlen = 0;
		for (e = b + 1; e < n_blobs && memcmp(blobs[e].sha, blobs[b].sha, 32) == 0; e++)
			;
		struct store_blob_record rec = { blobs[b].size, 0, now };
		unsigned char value[BLOB_RECORD_SIZE];
		index_key(bkey, PREFIX_BLOB, blobs[b].sha);
		if (get_value(s, bkey, &v, &vlen) == 0) {
			struct store_blob_record o;
			if (decode_record(v, vlen, &o) == 0)
				rec.refs = o.refs;
			free(v);
		}
		rec.refs += e - b;
		encode_record(&rec, value);
		rocksdb_writebatch_put(batch, bkey, sizeof(bkey), (const char *)value, sizeof(value));
		bytes += sizeof(bkey) + sizeof(value);
	}
	ret = check_space(s, bytes + 4096);
	if (ret == 0 && published) {
		rocksdb_write(s->db, no_wal, batch, &err);
		if (err)
			ret = errno_of_rocksdb_write(s, err);
		count_write(s);
	}
	pthread_mutex_unlock(&s->publish_lock);
	if (ret == 0)
		atomic_fetch_add(&s->published, published);
out:
	if (no_wal)
		rocksdb_writeoptions_destroy(no_wal);
	if (batch)
		rocksdb_writebatch_destroy(batch);
	free(keys);
	free(blobs);
	free(shas);
	free(sizes);
	return ret;
}

int store_bulk_sync(struct store *s)
{
	char *err = NULL;
	if (!writer(s))
		return -EROFS;
	/* The blobs first, then the index that names them. */
	if (syncfs(s->cas_fd) < 0)
		return -errno;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	if (!fo)
		return -ENOMEM;
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(s->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	/* Without the WAL a reader sees the batches only in the flushed tables: it catches up. */
	count_write(s);
	return err ? errno_of_rocksdb_write(s, err) : 0;
}
