/* cachepot-fs: the store as a read-only FUSE file system.
 *
 *   /ac/<key>/<output>    an output of a published job (mode of the manifest without write bits)
 *   /ac/<key>/.manifest   the signed manifest text
 *   /cas/<sha256>         any blob by content, 0444
 *   /pk/<pre-key>         the signed pre-key lists (fs/prekey_list.h) of direct mode, 0444
 *
 * libfuse3 low-level API, multithreaded loop. Why each choice:
 *
 * - Sources. Everything is read through fs/source.h, so this file does not know where the bytes
 *   come from; what follows of the index is the local source (fs/source_local.c).
 * - Following the daemon. The store's index is opened as a RocksDB SECONDARY instance
 *   (fs/store.h): RocksDB allows one writer process and the daemon is it. A lookup under ac/ that
 *   misses catches up with the writer (rocksdb_try_catch_up_with_primary, shared between
 *   concurrent misses) and looks again, so a key published by the daemon is visible at the very
 *   next lookup. Only when the daemon has written since the last catch-up: it counts its index
 *   writes in the store's "writes" file (fs/store.h), so a burst of misses while nothing is
 *   published costs one index lookup each, not one catch-up each. Publishing is one synced WriteBatch holding the whole manifest, written after
 *   every blob it names is durable, so a lookup finds either a complete key or nothing.
 *   This keeps the mount up while the daemon restarts and gives the FUSE server no write access.
 * - Caching. Everything that exists is immutable, so positive entries and attributes carry very
 *   long timeouts and files are opened with keep_cache. Until it is evicted (fs/gc.h): then a
 *   watcher thread tells the kernel to drop the key's entry (see "Evictions" below). A miss is answered with ENOENT and is NOT
 *   cached by the kernel (a negative entry would hide a key published a moment later).
 * - Inode numbers are derived from what a node IS (kind, key, output name / blob hash) through
 *   SHA-256 (62 bits), kept in a table of live nodes with lookup counts (the kernel's forget frees
 *   them). So an entry normally gets the same number every time, across remounts too, and no
 *   pointer is ever an inode number. Not always: when the derived number is held by a DIFFERENT
 *   live node at insertion (a 62-bit collision, odds about n^2 / 2^63 for n live nodes), the
 *   newcomer takes the next free number, and after a forget or a remount the same entry may get
 *   another one. readdir reports the number a lookup would assign at that moment.
 * - "..". The kernel resolves ".." from its own dentry tree; a lowlevel server without NFS export
 *   support is never asked to look it up. Only readdir's ".." entry is ours, and it names the real
 *   parent: the root for ac/ and cas/, ac/ for ac/<key>.
 * - Reads are spliced from the blob's file descriptor (fuse_reply_data with an FD buffer), so the
 *   bytes do not pass through this process when the kernel allows splice.
 * - Verification. Each file inode's blob is hashed on its FIRST open (and its size checked); a
 *   mismatch answers EIO for that open and every later one. The verdict is cached per inode for
 *   as long as the kernel keeps the inode. Cost: the first open of a file reads it once in full
 *   (SHA-256 at roughly 1-2 GB/s per core, plus the disk read, which also warms the page cache for
 *   the reads that follow); later opens cost nothing. Bytes changed on disk AFTER an inode was
 *   verified are not detected until the kernel forgets the inode (fsck finds them).
 * - Pre-key lists are the one thing that changes (a new list goes in front). A pk/ entry is
 *   looked up afresh every time (entry and attribute timeouts 0), each lookup reads the source,
 *   and its node is named by the SHA-256 of the text it holds: a changed object is another
 *   inode, so no page cache of the old text is ever served for the new one. pk/ lists nothing.
 * - Every mutating operation answers EROFS, also when the file system is mounted rw or the caller
 *   is root; the default mount options include ro so the kernel refuses most of them first.
 */
/* 3.12 for fuse_loop_cfg_* (max_threads); Debian 12 ships 3.14. */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs/manifest.h"
#include "fs/source.h"
#include "fs/store.h"
#include "hash/digest.h"

#define IMMUTABLE_TIMEOUT (365.0 * 24 * 3600)
#define INO_ROOT FUSE_ROOT_ID   /* 1 */
#define INO_AC 2
#define INO_CAS 3
#define INO_PK 4
#define INO_FIRST_DYNAMIC 16
#define NODE_BUCKETS (1u << 16)
#define READ_BLKSIZE (128 * 1024)
#define REMOTE_DEFAULT_CACHE_SIZE (UINT64_C(1) << 30)

enum node_kind { NODE_ROOT, NODE_AC, NODE_CAS, NODE_KEYDIR, NODE_OUTPUT, NODE_MANIFEST, NODE_BLOB,
	NODE_PK, NODE_PREKEY };

/* A live inode. Fields other than next/nlookup/verified never change after insertion, so a
 * request may use a node without the table lock as long as the kernel holds a reference. */
struct node {
	struct node *next;             /* hash chain, under fs->lock */
	uint64_t ino;
	uint64_t nlookup;              /* under fs->lock */
	enum node_kind kind;
	unsigned char id[32];          /* key (KEYDIR, OUTPUT, MANIFEST), blob hash (BLOB), or the
	                                * SHA-256 of the text (PREKEY) */
	char *name;                    /* OUTPUT: its name */
	unsigned char blob[32];        /* OUTPUT, BLOB: the content hash */
	uint64_t size;
	unsigned mode;
	int64_t mtime;
	struct manifest manifest;      /* KEYDIR */
	char *text; size_t text_len;   /* MANIFEST, PREKEY */
	atomic_int verified;           /* OUTPUT, BLOB: 0 not yet, 1 good, -1 corrupt */
	atomic_llong used;             /* OUTPUT: unix s of the last open that read a byte */
	atomic_ullong generation;      /* KEYDIR: the eviction generation it was last found at */
};

struct cachepot_fs {
	struct source *source;
	pthread_mutex_t lock;
	struct node *buckets[NODE_BUCKETS];
	int64_t started;
	struct fuse_session *session;  /* for the eviction watcher's notifications */
	atomic_int stopping;           /* the eviction watcher returns */
};

/* A directory listing, served by offset: taken whole at opendir, or for ac/ and cas/ of a
 * source that can resume a walk, only "." and ".." at opendir and the rest paged through the
 * index at readdir (STREAM: NODE_AC or NODE_CAS), so that listing a store of a million keys
 * holds one page, never the index. Entry i + 1 of the stream has offset n + i + 1; LAST is the
 * name of the entry at offset NEXT_OFF, where the next page resumes. */
struct listing {
	size_t n, cap;
	struct listing_entry { char *name; uint64_t ino; mode_t type; } *entries;
	int stream;
	unsigned char last[32];
	int have_last;
	off_t next_off;
};

static struct cachepot_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t ino_of_identity(enum node_kind kind, const unsigned char id[32], const char *name)
{
	unsigned char d[32];
	size_t name_len = name ? strlen(name) : 0;
	unsigned char buf[1 + 32 + MANIFEST_MAX_NAME + 1];
	buf[0] = (unsigned char)kind;
	memcpy(buf + 1, id, 32);
	if (name_len > MANIFEST_MAX_NAME)
		name_len = MANIFEST_MAX_NAME;
	memcpy(buf + 33, name ? name : "", name_len);
	if (digest_buffer(buf, 33 + name_len, d) < 0)
		memset(d, 0, sizeof(d));
	uint64_t ino = 0;
	for (int i = 0; i < 8; i++)
		ino = ino << 8 | d[i];
	ino &= (UINT64_C(1) << 62) - 1;   /* positive in any signed view */
	return ino < INO_FIRST_DYNAMIC ? ino + INO_FIRST_DYNAMIC : ino;
}

static int same_identity(const struct node *a, const struct node *b)
{
	if (a->kind != b->kind || memcmp(a->id, b->id, 32) != 0)
		return 0;
	return a->kind != NODE_OUTPUT || strcmp(a->name, b->name) == 0;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->text);
	manifest_release(&n->manifest);
	free(n);
}

static struct node *find_locked(struct cachepot_fs *fs, uint64_t ino)
{
	struct node *n = fs->buckets[ino % NODE_BUCKETS];
	while (n && n->ino != ino)
		n = n->next;
	return n;
}

/* The number of the node with this identity: its live node's, or, when it has none, the first
 * free one from the derived number on. Under fs->lock; *LIVE gets the live node or NULL. */
static uint64_t ino_probe_locked(struct cachepot_fs *fs, const struct node *identity,
                                 struct node **live)
{
	uint64_t ino = ino_of_identity(identity->kind, identity->id, identity->name);
	for (;; ino = ino + 1 < (UINT64_C(1) << 62) ? ino + 1 : INO_FIRST_DYNAMIC) {
		*live = find_locked(fs, ino);
		if (!*live || same_identity(*live, identity))
			return ino;
	}
}

/* What a lookup of this identity would answer now (readdir's d_ino). NAME may be NULL. */
static uint64_t ino_for_listing(struct cachepot_fs *fs, enum node_kind kind,
                                const unsigned char id[32], const char *name)
{
	struct node identity = { .kind = kind, .name = (char *)name };
	struct node *live;
	memcpy(identity.id, id, 32);
	pthread_mutex_lock(&fs->lock);
	uint64_t ino = ino_probe_locked(fs, &identity, &live);
	pthread_mutex_unlock(&fs->lock);
	return ino;
}

/* Insert FRESH (or find its twin), count one lookup; returns the live node. FRESH is consumed. */
static struct node *node_insert(struct cachepot_fs *fs, struct node *fresh)
{
	struct node *live;
	pthread_mutex_lock(&fs->lock);
	uint64_t ino = ino_probe_locked(fs, fresh, &live);
	if (live) {
		node_free(fresh);
	} else {
		live = fresh;
		live->ino = ino;
		live->next = fs->buckets[ino % NODE_BUCKETS];
		fs->buckets[ino % NODE_BUCKETS] = live;
	}
	live->nlookup++;
	pthread_mutex_unlock(&fs->lock);
	return live;
}

static struct node static_nodes[4] = {
	{ .ino = INO_ROOT, .kind = NODE_ROOT },
	{ .ino = INO_AC, .kind = NODE_AC },
	{ .ino = INO_CAS, .kind = NODE_CAS },
	{ .ino = INO_PK, .kind = NODE_PK },
};

static struct node *node_get(struct cachepot_fs *fs, fuse_ino_t ino)
{
	if (ino >= INO_ROOT && ino <= INO_PK)
		return &static_nodes[ino - INO_ROOT];
	pthread_mutex_lock(&fs->lock);
	struct node *n = find_locked(fs, ino);
	pthread_mutex_unlock(&fs->lock);
	return n;
}

static void node_forget(struct cachepot_fs *fs, fuse_ino_t ino, uint64_t count)
{
	if (ino <= INO_PK)
		return;
	pthread_mutex_lock(&fs->lock);
	struct node **p = &fs->buckets[ino % NODE_BUCKETS];
	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	struct node *n = *p;
	if (n) {
		n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
		if (n->nlookup == 0)
			*p = n->next;
		else
			n = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	node_free(n);
}

static int is_dir(const struct node *n)
{
	return n->kind == NODE_ROOT || n->kind == NODE_AC || n->kind == NODE_CAS || n->kind == NODE_KEYDIR
	       || n->kind == NODE_PK;
}

static void fill_attr(const struct cachepot_fs *fs, const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_blksize = READ_BLKSIZE;
	if (is_dir(n)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		st->st_size = 4096;
	} else {
		st->st_mode = S_IFREG | (n->mode & 0555);
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
	}
	st->st_blocks = (st->st_size + 511) / 512;
	int64_t t = n->kind == NODE_ROOT || n->kind == NODE_AC || n->kind == NODE_CAS || n->kind == NODE_PK
	            ? fs->started : n->mtime;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = (time_t)t;
}

static void reply_entry(fuse_req_t req, struct cachepot_fs *fs, struct node *n)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = 1;
	e.attr_timeout = n->kind == NODE_PREKEY ? 0 : IMMUTABLE_TIMEOUT;
	e.entry_timeout = n->kind == NODE_PREKEY ? 0 : IMMUTABLE_TIMEOUT;
	fill_attr(fs, n, &e.attr);
	if (fuse_reply_entry(req, &e) != 0)
		node_forget(fs, n->ino, 1);   /* the kernel never saw it: undo the lookup count */
}

static struct node *node_new(enum node_kind kind)
{
	struct node *n = calloc(1, sizeof(*n));
	if (n) {
		n->kind = kind;
		manifest_init(&n->manifest);
	}
	return n;
}

/* Build the node for NAME under PARENT; positive errno on failure. */
static int make_child(struct cachepot_fs *fs, const struct node *parent, const char *name,
                      struct node **out)
{
	struct node *n = NULL;
	unsigned char id[32];
	int ret;
	switch (parent->kind) {
	case NODE_ROOT:
		if (strcmp(name, "ac") == 0)
			*out = &static_nodes[1];
		else if (strcmp(name, "cas") == 0)
			*out = &static_nodes[2];
		else if (strcmp(name, "pk") == 0)
			*out = &static_nodes[3];
		else
			return ENOENT;
		return 0;
	case NODE_AC:
		if (!digest_hex_valid(name))
			return ENOENT;
		n = node_new(NODE_KEYDIR);
		if (!n)
			return ENOMEM;
		{
			/* Read before the manifest: a manifest found in a view older than the
			 * eviction watcher's is checked again by it (see "Evictions"). */
			uint64_t generation = 0;
			if (source_evictions(fs->source, 0, &generation) == 0)
				atomic_store(&n->generation, generation);
		}
		ret = source_get_manifest(fs->source, name, &n->manifest, NULL, NULL);
		if (ret < 0) {
			if (ret == -EBADMSG)
				fprintf(stderr, "cachepot-fs: manifest of %s fails verification\n", name);
			node_free(n);
			return ret == -ENOENT ? ENOENT : ret == -ENOMEM ? ENOMEM : EIO;
		}
		if (digest_from_hex(name, n->id) < 0) {
			node_free(n);
			return ENOENT;
		}
		n->mode = 0555;
		n->mtime = n->manifest.created;
		break;
	case NODE_CAS:
		if (digest_from_hex(name, id) < 0 || !digest_hex_valid(name))
			return ENOENT;
		n = node_new(NODE_BLOB);
		if (!n)
			return ENOMEM;
		memcpy(n->id, id, 32);
		memcpy(n->blob, id, 32);
		{
			int fd = -1;
			struct stat st;
			ret = source_open_blob(fs->source, id, SOURCE_SIZE_UNKNOWN, &fd, &n->size);
			if (ret == 0 && fstat(fd, &st) < 0)
				ret = -EIO;
			if (fd >= 0)
				close(fd);
			if (ret < 0) {
				node_free(n);
				return ret == -ENOENT ? ENOENT : ret == -ENOMEM ? ENOMEM : EIO;
			}
			n->mtime = st.st_mtim.tv_sec;
		}
		n->mode = 0444;
		break;
	case NODE_PK:
		if (!digest_hex_valid(name))
			return ENOENT;
		n = node_new(NODE_PREKEY);
		if (!n)
			return ENOMEM;
		ret = source_get_prekey_lists(fs->source, name, &n->text, &n->text_len);
		if (ret == 0)
			ret = digest_buffer(n->text, n->text_len, n->id);
		if (ret < 0) {
			if (ret == -EBADMSG)
				fprintf(stderr, "cachepot-fs: pre-key lists of %s fail verification\n", name);
			node_free(n);
			return ret == -ENOENT ? ENOENT : ret == -ENOMEM ? ENOMEM : EIO;
		}
		n->size = n->text_len;
		n->mode = 0444;
		n->mtime = time(NULL);
		break;
	case NODE_KEYDIR:
		if (strcmp(name, MANIFEST_NAME) == 0) {
			n = node_new(NODE_MANIFEST);
			if (!n)
				return ENOMEM;
			char hex[DIGEST_HEX_SIZE];
			digest_to_hex(parent->id, hex);
			struct manifest m;
			ret = source_get_manifest(fs->source, hex, &m, &n->text, &n->text_len);
			if (ret < 0) {
				node_free(n);
				return ret == -ENOMEM ? ENOMEM : EIO;
			}
			manifest_release(&m);
			n->size = n->text_len;
			n->mode = 0444;
		} else {
			long i = manifest_find_output(&parent->manifest, name);
			if (i < 0)
				return ENOENT;
			const struct manifest_output *o = &parent->manifest.outputs[i];
			n = node_new(NODE_OUTPUT);
			if (!n || !(n->name = strdup(name))) {
				node_free(n);
				return ENOMEM;
			}
			memcpy(n->blob, o->sha256, 32);
			n->size = o->size;
			n->mode = o->mode;
		}
		memcpy(n->id, parent->id, 32);
		n->mtime = parent->mtime;
		break;
	default:
		return ENOTDIR;
	}
	*out = node_insert(fs, n);
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct cachepot_fs *fs = fs_of(req);
	struct node *parent = node_get(fs, parent_ino), *child = NULL;
	if (!parent) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (!is_dir(parent)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	/* A miss is fuse_reply_err(ENOENT): the kernel does not cache it. */
	int err = make_child(fs, parent, name, &child);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_entry(req, fs, child);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cachepot_fs *fs = fs_of(req);
	struct node *n = node_get(fs, ino);
	struct stat st;
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fill_attr(fs, n, &st);
	fuse_reply_attr(req, &st, n->kind == NODE_PREKEY ? 0 : IMMUTABLE_TIMEOUT);
}

/* Hash the blob behind FD once per inode; 0 good, EIO corrupt. */
static int verify_once(struct node *n, int fd)
{
	int state = atomic_load(&n->verified);
	if (state == 0) {
		unsigned char d[32];
		uint64_t size = 0;
		/* pread-free: this fd is fresh, and reads use explicit offsets (FUSE_BUF_FD_SEEK). */
		int ok = digest_fd(fd, d, &size) == 0 && size == n->size && memcmp(d, n->blob, 32) == 0;
		state = ok ? 1 : -1;
		atomic_store(&n->verified, state);
		if (!ok) {
			char hex[DIGEST_HEX_SIZE];
			digest_to_hex(n->blob, hex);
			fprintf(stderr, "cachepot-fs: blob %s is corrupt (content does not match its name)"
			        "; reads answer EIO\n", hex);
		}
	}
	return state == 1 ? 0 : EIO;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cachepot_fs *fs = fs_of(req);
	struct node *n = node_get(fs, ino);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (is_dir(n)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fi->fh = 0;
	if (n->kind == NODE_MANIFEST || n->kind == NODE_PREKEY) {
		fuse_reply_open(req, fi);
		return;
	}
	int fd = -1;
	uint64_t size;
	int ret = source_open_blob(fs->source, n->blob, n->size, &fd, &size);
	if (ret < 0) {
		/* ENOENT: evicted (fs/gc.h) since the kernel looked the file up. */
		fuse_reply_err(req, ret == -ENOMEM || ret == -EMFILE || ret == -ENFILE || ret == -ENOENT
		                    ? -ret : EIO);
		return;
	}
	int err = verify_once(n, fd);
	if (err) {
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	/* A use the store's collection sees (fs/gc.h: a key's last use includes its outputs'
	 * atime): the kernel may serve this open from its page cache alone, so read one byte of
	 * the blob, at most once an hour per file; the kernel's relatime turns that into at most
	 * one atime write a day. */
	long long now = (long long)time(NULL), used = atomic_load(&n->used);
	if (n->kind == NODE_OUTPUT && used < now - 3600 && atomic_compare_exchange_strong(&n->used, &used, now)) {
		char byte;
		(void)!pread(fd, &byte, 1, 0);
	}
	fi->fh = (uint64_t)fd;
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct cachepot_fs *fs = fs_of(req);
	struct node *n = node_get(fs, ino);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (n->kind == NODE_MANIFEST || n->kind == NODE_PREKEY) {
		size_t start = off < 0 ? 0 : (size_t)off > n->text_len ? n->text_len : (size_t)off;
		size_t len = n->text_len - start < size ? n->text_len - start : size;
		fuse_reply_buf(req, n->text + start, len);
		return;
	}
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		close((int)fi->fh);
	fuse_reply_err(req, 0);
}

static void listing_free(struct listing *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->entries[i].name);
	free(l->entries);
	free(l);
}

static int listing_add(struct listing *l, const char *name, uint64_t ino, mode_t type)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *e = reallocarray(l->entries, cap, sizeof(*l->entries));
		if (!e)
			return -ENOMEM;
		l->entries = e;
		l->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	l->entries[l->n++] = (struct listing_entry){ copy, ino, type };
	return 0;
}

/* A listing being filled by a store walk. */
struct listing_walk {
	struct cachepot_fs *fs;
	struct listing *listing;
};

static int list_key(void *ctx, const char key_hex[65])
{
	struct listing_walk *walk = ctx;
	unsigned char id[32];
	if (digest_from_hex(key_hex, id) < 0)
		return 0;
	return listing_add(walk->listing, key_hex, ino_for_listing(walk->fs, NODE_KEYDIR, id, NULL),
	                   S_IFDIR);
}

static int list_blob(void *ctx, const unsigned char sha[32])
{
	struct listing_walk *walk = ctx;
	char hex[DIGEST_HEX_SIZE];
	digest_to_hex(sha, hex);
	return listing_add(walk->listing, hex, ino_for_listing(walk->fs, NODE_BLOB, sha, NULL),
	                   S_IFREG);
}

/* A walk that stops at once: whether the source can page (not -ENOTSUP). */
static int page_probe(void *ctx, const char key_hex[65])
{
	(void)ctx;
	(void)key_hex;
	return 1;
}

static int page_probe_blob(void *ctx, const unsigned char sha[32])
{
	(void)ctx;
	(void)sha;
	return 1;
}

/* One page of a streamed listing being filled: FUSE's buffer, and how many entries to pass
 * over first (a seekdir to an offset not where the last page stopped). */
struct page {
	fuse_req_t req;
	struct cachepot_fs *fs;
	struct listing *l;
	char *buf;
	size_t size, used;
	uint64_t skip;
};

/* Add entry ID (a key or a blob) to the page: 1 (stop) when it does not fit, and then it is
 * where the next page starts. */
static int page_add(struct page *p, const unsigned char id[32])
{
	struct listing *l = p->l;
	char hex[DIGEST_HEX_SIZE];
	if (p->skip) {
		p->skip--;
	} else {
		enum node_kind kind = l->stream == NODE_AC ? NODE_KEYDIR : NODE_BLOB;
		struct stat st = { .st_ino = ino_for_listing(p->fs, kind, id, NULL),
		                   .st_mode = kind == NODE_KEYDIR ? S_IFDIR : S_IFREG };
		digest_to_hex(id, hex);
		size_t need = fuse_add_direntry(p->req, p->buf + p->used, p->size - p->used, hex, &st,
		                                l->next_off + 1);
		if (need > p->size - p->used)
			return 1;
		p->used += need;
	}
	memcpy(l->last, id, 32);
	l->have_last = 1;
	l->next_off++;
	return 0;
}

static int page_key(void *ctx, const char key_hex[65])
{
	unsigned char id[32];
	if (digest_from_hex(key_hex, id) < 0)
		return 0;
	return page_add(ctx, id);
}

static int page_blob(void *ctx, const unsigned char sha[32])
{
	return page_add(ctx, sha);
}

/* Fill P with the stream's entries from offset OFF (>= l->n). */
static int page_fill(struct page *p, off_t off)
{
	struct listing *l = p->l;
	if (off != l->next_off || !l->have_last) {
		/* from the start (a first page, a rewinddir or a seekdir): pass over what is before */
		l->have_last = 0;
		l->next_off = (off_t)l->n;
		p->skip = (uint64_t)(off - (off_t)l->n);
	}
	const unsigned char *after = l->have_last ? l->last : NULL;
	int ret = l->stream == NODE_AC
	          ? source_foreach_key_after(p->fs->source, after, page_key, p)
	          : source_foreach_blob_after(p->fs->source, after, page_blob, p);
	return ret < 0 ? ret : 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cachepot_fs *fs = fs_of(req);
	struct node *n = node_get(fs, ino);
	struct listing *l = calloc(1, sizeof(*l));
	int ret = 0;
	if (!n || !l) {
		free(l);
		fuse_reply_err(req, n ? ENOMEM : ESTALE);
		return;
	}
	if (!is_dir(n)) {
		free(l);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct listing_walk walk = { fs, l };
	uint64_t parent = n->kind == NODE_KEYDIR ? INO_AC : INO_ROOT;
	if (listing_add(l, ".", n->ino, S_IFDIR) < 0 || listing_add(l, "..", parent, S_IFDIR) < 0)
		ret = -ENOMEM;
	switch (ret ? NODE_BLOB : n->kind) {
	case NODE_ROOT:
		if ((ret = listing_add(l, "ac", INO_AC, S_IFDIR)) == 0)
			ret = listing_add(l, "cas", INO_CAS, S_IFDIR);
		if (ret == 0)
			ret = listing_add(l, "pk", INO_PK, S_IFDIR);
		break;
	case NODE_AC:
		source_catch_up(fs->source);
		if (source_foreach_key_after(fs->source, NULL, page_probe, NULL) != -ENOTSUP)
			l->stream = NODE_AC;
		else
			ret = source_foreach_key(fs->source, list_key, &walk);
		break;
	case NODE_CAS:
		/* What the source lists (a blob it does not list is still found by lookup). */
		source_catch_up(fs->source);
		if (source_foreach_blob_after(fs->source, NULL, page_probe_blob, NULL) != -ENOTSUP)
			l->stream = NODE_CAS;
		else
			ret = source_foreach_blob(fs->source, list_blob, &walk);
		break;
	case NODE_KEYDIR:
		ret = listing_add(l, MANIFEST_NAME, ino_for_listing(fs, NODE_MANIFEST, n->id, NULL),
		                  S_IFREG);
		for (size_t i = 0; ret == 0 && i < n->manifest.n_outputs; i++)
			ret = listing_add(l, n->manifest.outputs[i].name,
			                  ino_for_listing(fs, NODE_OUTPUT, n->id, n->manifest.outputs[i].name),
			                  S_IFREG);
		break;
	default:
		break;
	}
	if (ret < 0) {
		listing_free(l);
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->cache_readdir = n->kind == NODE_KEYDIR || n->kind == NODE_ROOT;
	fi->keep_cache = fi->cache_readdir;
	if (fuse_reply_open(req, fi) != 0)
		listing_free(l);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t i;
	for (i = off < 0 ? 0 : (size_t)off; i < l->n; i++) {
		struct stat st = { .st_ino = l->entries[i].ino, .st_mode = l->entries[i].type };
		size_t need = fuse_add_direntry(req, buf + used, size - used, l->entries[i].name, &st,
		                                (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	if (l->stream && i >= l->n) {
		struct page p = { req, fs_of(req), l, buf, size, used, 0 };
		int ret = page_fill(&p, off > (off_t)l->n ? off : (off_t)l->n);
		if (ret < 0) {
			free(buf);
			fuse_reply_err(req, -ret);
			return;
		}
		used = p.used;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	listing_free((struct listing *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cachepot_fs *fs = fs_of(req);
	struct statvfs sv;
	int ret = source_statvfs(fs->source, &sv);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	sv.f_namemax = 255;
	sv.f_flag |= ST_RDONLY;
	sv.f_bavail = sv.f_ffree = sv.f_favail = 0;   /* nothing can be written through the mount */
	fuse_reply_statfs(req, &sv);
}

/* ---- Every mutating operation: EROFS, whoever asks and however it is mounted. ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv, off_t off,
                         struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Let libfuse splice the blob's pages into /dev/fuse instead of copying them. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
	/* No writeback cache: nothing is written. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static const struct fuse_lowlevel_ops cachepot_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.write = op_write,
	.write_buf = op_write_buf,
	.create = op_create,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
};

/* ---- Evictions ----
 * Entries are immutable and the kernel keeps them for a year, so a key the store evicts
 * (fs/gc.h) would stay visible through a dentry the kernel holds. A watcher thread polls the
 * source's eviction generation every EVICTION_POLL_MS (a catch-up, cheap when nothing changed);
 * when it moved, each key directory the kernel still holds is looked up in the index again and
 * the kernel told to drop the entry of each that is gone (fuse_lowlevel_notify_inval_entry), so
 * the next lookup asks us and finds ENOENT. A file already open keeps its inode and its blob fd
 * and stays readable; an open after the blob is gone answers ENOENT. */
#define EVICTION_POLL_MS 1000

/* The keys of the KEYDIR nodes found at a generation older than NOW, as hex (malloc'd array of
 * *N); each is marked as found at NOW, since the caller now looks at it again. */
static char (*keys_older_than(struct cachepot_fs *fs, uint64_t now, size_t *n))[65]
{
	char (*keys)[65] = NULL;
	size_t cap = 0;
	*n = 0;
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < NODE_BUCKETS; b++)
		for (struct node *nd = fs->buckets[b]; nd; nd = nd->next) {
			if (nd->kind != NODE_KEYDIR || atomic_load(&nd->generation) >= now)
				continue;
			if (*n == cap) {
				size_t grown = cap ? 2 * cap : 64;
				char (*k)[65] = reallocarray(keys, grown, sizeof(*keys));
				if (!k)
					goto out;
				keys = k;
				cap = grown;
			}
			atomic_store(&nd->generation, now);
			digest_to_hex(nd->id, keys[(*n)++]);
		}
out:
	pthread_mutex_unlock(&fs->lock);
	return keys;
}

/* Each poll catches up and reads the generation NOW; every key directory found at an older one
 * is looked up in the index again, and the kernel told to drop those that are gone. A lookup
 * that read a view from before an eviction but inserted its node after a scan keeps its older
 * generation, so the next poll checks it: no evicted key stays. */
static void *eviction_watcher(void *arg)
{
	struct cachepot_fs *fs = arg;
	uint64_t now = 0;
	while (!atomic_load(&fs->stopping)) {
		for (int i = 0; i < EVICTION_POLL_MS / 50 && !atomic_load(&fs->stopping); i++)
			usleep(50 * 1000);
		if (atomic_load(&fs->stopping) || source_evictions(fs->source, 1, &now) < 0 || now == 0)
			continue;
		size_t n = 0;
		char (*keys)[65] = keys_older_than(fs, now, &n);
		for (size_t i = 0; i < n; i++)
			if (source_has_key(fs->source, keys[i]) == 0)
				fuse_lowlevel_notify_inval_entry(fs->session, INO_AC, keys[i], 64);
		free(keys);
	}
	return NULL;
}

/* ---- main ---- */

struct cmdline {
	char *source;
	/* A remote source's options (-o trust=FILE,cache=DIR,...), consumed here. */
	char *trust, *cache, *cache_size, *cacert, *proxy, *connect_timeout_ms, *stall_timeout_ms;
};

static const struct fuse_opt cmdline_options[] = {
	{ "trust=%s", offsetof(struct cmdline, trust), 0 },
	{ "cache=%s", offsetof(struct cmdline, cache), 0 },
	{ "cache_size=%s", offsetof(struct cmdline, cache_size), 0 },
	{ "cacert=%s", offsetof(struct cmdline, cacert), 0 },
	{ "proxy=%s", offsetof(struct cmdline, proxy), 0 },
	{ "connect_timeout_ms=%s", offsetof(struct cmdline, connect_timeout_ms), 0 },
	{ "stall_timeout_ms=%s", offsetof(struct cmdline, stall_timeout_ms), 0 },
	FUSE_OPT_END
};

static int is_url(const char *source)
{
	return strncmp(source, "http://", 7) == 0 || strncmp(source, "https://", 8) == 0;
}

/* A timeout option: 1..600000 ms. */
static int parse_ms(const char *name, const char *text, unsigned *out)
{
	uint64_t v;
	if (!text)
		return 0;
	if (source_parse_size(text, &v) < 0 || v == 0 || v > 600000) {
		fprintf(stderr, "cachepot-fs: %s=%s: not a number of milliseconds (1..600000)\n", name,
		        text);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* The source CMD names: a store directory, or an http(s) URL with its options. */
static int open_source(const struct cmdline *cmd, struct source **out)
{
	if (!is_url(cmd->source)) {
		if (cmd->trust || cmd->cache || cmd->cache_size || cmd->cacert || cmd->proxy ||
		    cmd->connect_timeout_ms || cmd->stall_timeout_ms) {
			fprintf(stderr, "cachepot-fs: trust=, cache=, cache_size=, cacert=, proxy= and the "
			        "timeouts are options of an http(s):// source\n");
			return -EINVAL;
		}
		int err = source_local_open(cmd->source, out);
		if (err < 0)
			fprintf(stderr, "cachepot-fs: cannot open store %s: %s\n", cmd->source,
			        strerror(-err));
		return err;
	}
	struct source_remote_options o = {
		.url = cmd->source, .trust_file = cmd->trust, .cache_dir = cmd->cache,
		.cache_size = REMOTE_DEFAULT_CACHE_SIZE, .cacert = cmd->cacert, .proxy = cmd->proxy,
	};
	if (!cmd->trust || !cmd->cache) {
		fprintf(stderr, "cachepot-fs: an http(s):// source needs -o trust=FILE,cache=DIR\n");
		return -EINVAL;
	}
	if (cmd->cache_size && (source_parse_size(cmd->cache_size, &o.cache_size) < 0 ||
	                        o.cache_size == 0)) {
		fprintf(stderr, "cachepot-fs: cache_size=%s: not a size (e.g. 10G)\n", cmd->cache_size);
		return -EINVAL;
	}
	if (parse_ms("connect_timeout_ms", cmd->connect_timeout_ms, &o.connect_timeout_ms) < 0 ||
	    parse_ms("stall_timeout_ms", cmd->stall_timeout_ms, &o.stall_timeout_ms) < 0)
		return -EINVAL;
	int err = source_remote_open(&o, out);
	if (err < 0)
		fprintf(stderr, "cachepot-fs: cannot use %s: %s\n", cmd->source, strerror(-err));
	return err;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *c = data;
	if (key == FUSE_OPT_KEY_NONOPT && !c->source) {
		c->source = strdup(arg);
		return 0;
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s SOURCE MOUNTPOINT [-f] [-o OPTION[,OPTION...]]\n\n"
	       "Mount the cachepot store SOURCE read-only at MOUNTPOINT. SOURCE is a store directory\n"
	       "(e.g. " STORE_DEFAULT_DIR ") or a worker's http(s)://HOST:PORT/, which takes\n"
	       "    -o trust=FILE       pinned Ed25519 public keys, 64 hex digits a line (required)\n"
	       "    -o cache=DIR        local cache of verified objects (required)\n"
	       "    -o cache_size=SIZE  its bound, e.g. 10G (default 1G)\n"
	       "    -o cacert=FILE      CA certificates for https\n"
	       "    -o proxy=URL        an HTTP proxy (none by default, whatever the environment says)\n"
	       "    -o connect_timeout_ms=N,stall_timeout_ms=N  (default 3000 and 5000)\n"
	       "Default options: ro,default_permissions,allow_other (root).\n\n",
	       prog);
}

static void free_nodes(struct cachepot_fs *fs)
{
	for (size_t b = 0; b < NODE_BUCKETS; b++) {
		struct node *n = fs->buckets[b];
		while (n) {
			struct node *next = n->next;
			node_free(n);
			n = next;
		}
	}
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct cmdline cmd = { NULL };
	struct fuse_session *se = NULL;
	struct cachepot_fs *fs = NULL;
	int ret = 1, status_pipe[2] = { -1, -1 }, mounted = 0, watching = 0;
	pthread_t watcher;
	memset(&opts, 0, sizeof(opts));

	if (fuse_opt_parse(&args, &cmd, cmdline_options, opt_proc) != 0)
		goto out;
	/* Defaults first, so a user's -o (e.g. rw) comes later and wins. */
	if (fuse_opt_insert_arg(&args, 1, geteuid() == 0
	                            ? "-oro,default_permissions,allow_other,fsname=cachepot,subtype=cachepot"
	                            : "-oro,default_permissions,fsname=cachepot,subtype=cachepot") != 0)
		goto out;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out;
	if (opts.show_help) {
		usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (opts.show_version) {
		printf("cachepot-fs %s\n", PACKAGE_VERSION);
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (!cmd.source || !opts.mountpoint) {
		fprintf(stderr, "usage: %s SOURCE MOUNTPOINT [-f] [-o OPTIONS] (--help for more)\n", argv[0]);
		goto out;
	}
	/* Detach BEFORE the store is opened: RocksDB starts threads, which a fork would not carry.
	 * The parent waits for the child's verdict so that errors still reach the caller. */
	if (!opts.foreground) {
		if (pipe2(status_pipe, O_CLOEXEC) < 0) {
			perror("cachepot-fs: pipe");
			goto out;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("cachepot-fs: fork");
			goto out;
		}
		if (pid > 0) {
			char verdict = 1;
			close(status_pipe[1]);
			status_pipe[1] = -1;
			ret = read(status_pipe[0], &verdict, 1) == 1 && verdict == 0 ? 0 : 1;
			goto out;
		}
		close(status_pipe[0]);
		status_pipe[0] = -1;
		setsid();
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		goto out;
	pthread_mutex_init(&fs->lock, NULL);
	fs->started = time(NULL);
	if (open_source(&cmd, &fs->source) < 0)
		goto out;
	se = fuse_session_new(&args, &cachepot_ops, sizeof(cachepot_ops), fs);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out;
	mounted = 1;
	fs->session = se;
	if (!opts.foreground) {
		char ok = 0;
		if (write(status_pipe[1], &ok, 1) != 1)
			goto out;
		close(status_pipe[1]);
		status_pipe[1] = -1;
		if (chdir("/") < 0)
			goto out;
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
	}
	uint64_t generation;
	if (source_evictions(fs->source, 0, &generation) == 0
	    && pthread_create(&watcher, NULL, eviction_watcher, fs) == 0)
		watching = 1;
	if (opts.singlethread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *config = fuse_loop_cfg_create();
		if (!config)
			goto out;
		fuse_loop_cfg_set_clone_fd(config, (unsigned)opts.clone_fd);
		fuse_loop_cfg_set_max_threads(config, opts.max_threads);
		ret = fuse_session_loop_mt(se, config);
		fuse_loop_cfg_destroy(config);
	}
	ret = ret == 0 ? 0 : 1;
out:
	if (watching) {
		atomic_store(&fs->stopping, 1);
		pthread_join(watcher, NULL);
	}
	if (status_pipe[1] >= 0) {
		char bad = 1;
		if (write(status_pipe[1], &bad, 1) < 0)
			bad = 0;
		close(status_pipe[1]);
	}
	if (status_pipe[0] >= 0)
		close(status_pipe[0]);
	if (se) {
		if (mounted)
			fuse_session_unmount(se);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	if (fs) {
		free_nodes(fs);
		source_close(fs->source);
		pthread_mutex_destroy(&fs->lock);
		free(fs);
	}
	free(opts.mountpoint);
	free(cmd.source);
	free(cmd.trust);
	free(cmd.cache);
	free(cmd.cache_size);
	free(cmd.cacert);
	free(cmd.proxy);
	free(cmd.connect_timeout_ms);
	free(cmd.stall_timeout_ms);
	fuse_opt_free_args(&args);
	return ret;
}
