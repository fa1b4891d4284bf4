/* publish-bench: publish throughput of the store's durable path (bench/publish-bench.sh).
 *
 *   publish-bench DIR [--threads T] [--jobs J] [--blobs K] [--bytes B] [--rounds R] [--modes M,...]
 *
 * T publishers each publish J small jobs: K blobs of B bytes each (K-2 outputs, stdout and
 * stderr; every blob's bytes unique, so each one is a new file in cas/), committed, then the
 * signed manifest published (store_publish: the synced index write). The modes run alternately,
 * R rounds each, every run on a new store under DIR (removed after), so the machine's load
 * falls on every mode alike:
 *   single        every blob committed alone (store_blob_commit: its fsync, rename, directory
 *                 fsync), as the daemon did before the batched commit
 *   batch-plain   a job's blobs committed together (store_blob_commit_many), fsyncs one after
 *                 the other (STORE_PLAIN_FSYNC)
 *   batch         the same, fsyncs submitted together (io_uring when built with liburing)
 * Prints one line per run and per mode the median jobs/s and the median of the mean
 * milliseconds a job spent committing blobs and publishing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/fsync_set.h"
#include "fs/manifest.h"
#include "fs/store.h"
#include "fs/tree.h"
#include "hash/digest.h"

#define MAX_BLOBS 64
#define MAX_BYTES (1u << 20)
#define MAX_RUNS 64

enum mode { MODE_SINGLE, MODE_BATCH_PLAIN, MODE_BATCH, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "single", "batch-plain", "batch" };

struct run {
	struct store *store;
	enum mode mode;
	unsigned jobs, blobs;
	size_t bytes;
	atomic_uint next_thread;
	atomic_uint_fast64_t commit_ns, publish_ns, failed;
};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int fill_random(unsigned char *p, size_t n)
{
	while (n) {
		ssize_t k = getrandom(p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One job: its blobs committed as RUN's mode says, then its manifest published. */
static int one_job(struct run *r, unsigned char *body)
{
	struct store_blob_writer *ws[MAX_BLOBS];
	unsigned char sha[MAX_BLOBS][32];
	struct manifest m;
	int ret = 0;
	manifest_init(&m);
	unsigned char key[32];
	if ((ret = fill_random(key, sizeof(key))) < 0)
		return ret;
	digest_to_hex(key, m.key);
	memset(m.toolchain, 'a', 64);
	unsigned n_out = r->blobs - 2;
	m.outputs = calloc(n_out ? n_out : 1, sizeof(*m.outputs));
	if (!m.outputs)
		return -ENOMEM;
	uint64_t t0 = now_ns();
	unsigned begun = 0;
	for (; begun < r->blobs; begun++) {
		/* Unique bytes: a random head over the rest. */
		if ((ret = fill_random(body, r->bytes < 32 ? r->bytes : 32)) < 0)
			break;
		if ((ret = store_blob_begin(r->store, &ws[begun])) < 0)
			break;
		if ((ret = store_blob_write(ws[begun], body, r->bytes)) < 0) {
			store_blob_abort(ws[begun]);
			break;
		}
		if (r->mode == MODE_SINGLE && (ret = store_blob_commit(ws[begun], NULL, sha[begun])) < 0) {
			begun++;
			break;
		}
	}
	if (r->mode != MODE_SINGLE) {
		if (ret < 0)
			for (unsigned i = 0; i < begun; i++)
				store_blob_abort(ws[i]);
		else
			ret = store_blob_commit_many(ws, begun, sha);
	}
	uint64_t t1 = now_ns();
	if (ret == 0) {
		for (unsigned i = 0; i < n_out; i++) {
			char name[16];
			snprintf(name, sizeof(name), "out%u", i);
			m.outputs[i].name = strdup(name);
			m.outputs[i].mode = 0644;
			m.outputs[i].size = r->bytes;
			memcpy(m.outputs[i].sha256, sha[i], 32);
			m.n_outputs++;
		}
		memcpy(m.stdout_sha256, sha[n_out], 32);
		memcpy(m.stderr_sha256, sha[n_out + 1], 32);
		m.stdout_size = m.stderr_size = r->bytes;
		m.worker = strdup("publish-bench");
		m.created = (int64_t)time(NULL);
		ret = store_publish(r->store, &m);
	}
	uint64_t t2 = now_ns();
	atomic_fetch_add(&r->commit_ns, t1 - t0);
	atomic_fetch_add(&r->publish_ns, t2 - t1);
	manifest_release(&m);
	return ret;
}

static void *publisher(void *arg)
{
	struct run *r = arg;
	unsigned char *body = malloc(r->bytes);
	if (!body) {
		atomic_fetch_add(&r->failed, 1);
		return NULL;
	}
	memset(body, 'x', r->bytes);
	for (unsigned j = 0; j < r->jobs; j++) {
		int ret = one_job(r, body);
		if (ret != 0) {
			fprintf(stderr, "publish-bench: job: %s\n", strerror(ret < 0 ? -ret : EEXIST));
			atomic_fetch_add(&r->failed, 1);
		}
	}
	free(body);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int usage(void)
{
	fprintf(stderr, "usage: publish-bench DIR [--threads T] [--jobs J] [--blobs K] [--bytes B] "
	                "[--rounds R] [--modes single,batch-plain,batch]\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned threads = 1, jobs = 200, blobs = 5, rounds = 3;
	size_t bytes = 2048;
	int want[MODE_COUNT] = { 1, 1, 1 };
	if (argc < 2)
		return usage();
	const char *dir = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		if (strcmp(argv[i], "--threads") == 0)
			threads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--blobs") == 0)
			blobs = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--bytes") == 0)
			bytes = (size_t)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--rounds") == 0)
			rounds = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--modes") == 0) {
			memset(want, 0, sizeof(want));
			char *list = strdup(v), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				int k;
				for (k = 0; k < MODE_COUNT && strcmp(t, mode_names[k]) != 0; k++)
					;
				if (k == MODE_COUNT) {
					free(list);
					return usage();
				}
				want[k] = 1;
			}
			free(list);
		} else
			return usage();
		i++;
	}
	if (threads < 1 || threads > 64 || jobs < 1 || blobs < 3 || blobs > MAX_BLOBS || bytes < 1
	    || bytes > MAX_BYTES || rounds < 1 || rounds > MAX_RUNS)
		return usage();
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		perror(dir);
		return 1;
	}
	printf("publish-bench: %u publisher(s), %u jobs each, %u blobs of %zu bytes a job, "
	       "io_uring %s\n", threads, jobs, blobs, bytes,
	       fsync_set_uses_io_uring() ? "built in" : "not built");
	double rate[MODE_COUNT][MAX_RUNS], commit_ms[MODE_COUNT][MAX_RUNS], publish_ms[MODE_COUNT][MAX_RUNS];
	int status = 0;
	for (unsigned round = 0; round < rounds; round++)
		for (int k = 0; k < MODE_COUNT; k++) {
			/* Rotate the order, so no mode always runs first in a round. */
			int mode = (k + (int)round) % MODE_COUNT;
			if (!want[mode])
				continue;
			char name[64];
			snprintf(name, sizeof(name), "store-%s-%u", mode_names[mode], round);
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			struct run r = { .mode = (enum mode)mode, .jobs = jobs, .blobs = blobs, .bytes = bytes };
			unsigned flags = STORE_CREATE | (mode == MODE_BATCH_PLAIN ? STORE_PLAIN_FSYNC : 0);
			int ret = store_open(path, flags, &r.store);
			if (ret < 0) {
				fprintf(stderr, "publish-bench: %s: %s\n", path, strerror(-ret));
				return 1;
			}
			pthread_t tid[64];
			uint64_t t0 = now_ns();
			for (unsigned t = 0; t < threads; t++)
				pthread_create(&tid[t], NULL, publisher, &r);
			for (unsigned t = 0; t < threads; t++)
				pthread_join(tid[t], NULL);
			double secs = (double)(now_ns() - t0) / 1e9;
			struct store_counters c;
			store_get_counters(r.store, &c);
			store_close(r.store);
			if (tree_remove_at(dirfd, name) < 0)
				fprintf(stderr, "publish-bench: could not remove %s\n", path);
			double n_jobs = (double)threads * jobs;
			rate[mode][round] = n_jobs / secs;
			commit_ms[mode][round] = (double)atomic_load(&r.commit_ns) / 1e6 / n_jobs;
			publish_ms[mode][round] = (double)atomic_load(&r.publish_ns) / 1e6 / n_jobs;
			printf("run %u %-12s %8.1f jobs/s  commit %7.2f ms/job  publish %7.2f ms/job  "
			       "(%llu published, %llu failed)\n", round, mode_names[mode], rate[mode][round],
			       commit_ms[mode][round], publish_ms[mode][round],
			       (unsigned long long)c.published, (unsigned long long)atomic_load(&r.failed));
			if (atomic_load(&r.failed))
				status = 1;
			fflush(stdout);
		}
	for (int mode = 0; mode < MODE_COUNT; mode++)
		if (want[mode])
			printf("median %-12s %8.1f jobs/s  commit %7.2f ms/job  publish %7.2f ms/job\n",
			       mode_names[mode], median(rate[mode], rounds), median(commit_ms[mode], rounds),
			       median(publish_ms[mode], rounds));
	close(dirfd);
	return status;
}
