/* The docker backend of the sandbox interface (sandbox.h): one fresh container per run, made,
 * started, waited for and removed through the Docker Engine API on dockerd's Unix socket
 * (libcurl); the docker CLI is never run.
 *
 * The image. The toolchain tree becomes an image once: a tar made here of the layout the bwrap
 * root has (rust/ and usr/ of the tree, lib -> usr/lib, lib64 -> usr/lib64, empty mount points
 * cachepot, tmp, proc, dev), every entry owned by 0:0 with mtime 0, imported with POST
 * /images/create?fromSrc=- and tagged cachepot-toolchain:<toolchain id>. Nothing is pulled. An
 * image of that tag is taken as made from the same tree (the id is the tree's content hash).
 * Imports are serialised in this process (one mutex) so that two first runs of a toolchain do
 * not both import it.
 *
 * One run:
 *   1. lease the run's uid and mount the output tmpfs on output_host_dir, as the bwrap backend
 *      does (sandbox.c): 0700, owned by the uid, opened for sandbox_result_output_fd;
 *   2. POST /containers/create: the image, argv as Cmd, exactly spec->envp as Env (dockerd adds
 *      HOSTNAME, and PATH when the job has none), User uid:gid, NetworkMode none,
 *      ReadonlyRootfs, CapDrop ALL, no-new-privileges, the project's seccomp filter as a
 *      profile (seccomp.c, from the same tables), Memory = MemorySwap, PidsLimit, ulimits
 *      (cpu, nofile, nproc, core), /tmp a tmpfs of tmp_bytes, /dev/shm of shm_bytes, the input
 *      dir bound read-only at /cachepot, the extra binds read-only, the output tmpfs bound
 *      read-write at output_dest, logs kept by json-file to a bounded size;
 *   3. start it, then POST /containers/ID/wait in slices until the timeout, reading the
 *      cgroup's pids.events and memory peak after each (the cgroup goes when the container
 *      stops); at the timeout, kill it (every process of the container goes with its pid
 *      namespace's init);
 *   4. inspect it (exit code, OOMKilled), fetch the logs (the multiplexed stream, kept up to
 *      capture_bytes);
 *   5. DELETE /containers/ID?force=1&v=1 -- on every path once the create succeeded.
 * The result then reads as bwrap's: exit status (a signal S as 128+S), SIGKILL and timed_out at
 * the timeout, memory_exceeded from OOMKilled, pids_exceeded from the pids cgroup. user_us and
 * sys_us stay 0 (the container's cgroup is gone by the time they would be read).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <jansson.h>

#include "base/clock.h"
#include "base/roots.h"
#include "sandbox/internal.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

#define DOCKER_URL "http://localhost"       /* the host part is not used on a Unix socket */
#define DOCKER_ANSWER_MAX (1u << 20)          /* largest JSON answer read */
#define DOCKER_CALL_TIMEOUT_MS 60000          /* one API call but the wait and the import */
#define DOCKER_IMPORT_TIMEOUT_MS (30 * 60 * 1000)
#define DOCKER_KILL_GRACE_MS 5000
#define IMAGE_REPO "cachepot-toolchain"
#define TREE_DEPTH_MAX 64
#define COPY_CHUNK 65536

/* Imports of toolchain images, one at a time (see the top of the file). */
static pthread_mutex_t import_lock = PTHREAD_MUTEX_INITIALIZER;

struct answer {
	char *buf;
	size_t len, max;
	int overflow;
};

static size_t answer_write(char *data, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;

	if (a->overflow || len > a->max - a->len) {
		a->overflow = 1;
		return len; /* keep reading, keep nothing more */
	}
	char *b = realloc(a->buf, a->len + len + 1);
	if (!b)
		return 0;
	a->buf = b;
	memcpy(a->buf + a->len, data, len);
	a->len += len;
	a->buf[a->len] = '\0';
	return len;
}

/* The logs endpoint's stream: frames of an 8-byte header (stream 1 stdout or 2 stderr, 3 zero
 * bytes, a big-endian 32-bit length) and the payload, split anywhere by the transport. */
struct log_capture {
	unsigned char head[8];
	size_t head_len;
	uint32_t left; /* payload bytes of the current frame still to come */
	int stream;
	struct answer out, err;
	int truncated;
};

static size_t logs_write(char *data, size_t size, size_t n, void *arg)
{
	struct log_capture *c = arg;
	size_t len = size * n, used = 0;

	while (used < len) {
		if (c->left == 0) {
			size_t take = sizeof(c->head) - c->head_len;
			if (take > len - used)
				take = len - used;
			memcpy(c->head + c->head_len, data + used, take);
			c->head_len += take;
			used += take;
			if (c->head_len < sizeof(c->head))
				break;
			c->head_len = 0;
			c->stream = c->head[0];
			c->left = (uint32_t)c->head[4] << 24 | (uint32_t)c->head[5] << 16 |
				  (uint32_t)c->head[6] << 8 | c->head[7];
			continue;
		}
		size_t take = c->left < len - used ? c->left : len - used;
		struct answer *a = c->stream == 2 ? &c->err : &c->out;
		size_t keep = take < a->max - a->len ? take : a->max - a->len;
		if (keep < take)
			c->truncated = 1;
		if (keep && answer_write(data + used, 1, keep, a) != keep)
			return 0;
		used += take;
		c->left -= (uint32_t)take;
	}
	return len;
}

struct docker_client {
	CURL *curl;
	const char *socket;
	char error[CURL_ERROR_SIZE];
};

static int client_init(struct docker_client *c, const char *socket)
{
	memset(c, 0, sizeof(*c));
	c->socket = socket ? socket : SANDBOX_DOCKER_DEFAULT_SOCKET;
	c->curl = curl_easy_init();
	return c->curl ? 0 : -ENOMEM;
}

static void client_release(struct docker_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

/* One API call: METHOD PATH with BODY (JSON, or NULL), the answer into A (or into LOGS, as the
 * multiplexed stream, when non-NULL). Returns the HTTP status, -ETIMEDOUT when TIMEOUT_MS
 * passed, or another -errno (-ECONNREFUSED: dockerd is not there). */
static int client_call(struct docker_client *c, const char *method, const char *path,
		       const char *body, long timeout_ms, struct answer *a, struct log_capture *logs)
{
	char url[1024];
	struct curl_slist *headers = NULL;
	long status = 0;
	CURLcode cc;

	if ((size_t)snprintf(url, sizeof(url), DOCKER_URL "%s", path) >= sizeof(url))
		return -ENAMETOOLONG;
	curl_easy_reset(c->curl);
	c->error[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->error);
	if (body) {
		headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (!headers)
			return -ENOMEM;
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
	}
	if (logs) {
		curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, logs_write);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, logs);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, answer_write);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, a);
	}
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (cc == CURLE_COULDNT_CONNECT)
		return -ECONNREFUSED;
	if (cc != CURLE_OK)
		return -EIO;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	return (int)status;
}

/* A call whose answer is JSON or nothing: the status (and *JSON, owned, when asked and
 * parseable) or -errno. */
static int client_json(struct docker_client *c, const char *method, const char *path,
		       const char *body, long timeout_ms, json_t **json, char *err, size_t errlen)
{
	struct answer a = { .max = DOCKER_ANSWER_MAX };
	int status = client_call(c, method, path, body, timeout_ms, &a, NULL);

	if (json)
		*json = NULL;
	if (status >= 400 && err) {
		json_t *e = a.buf ? json_loads(a.buf, 0, NULL) : NULL;
		const char *m = json_string_value(json_object_get(e, "message"));
		snprintf(err, errlen, "dockerd: %s %s: %d %s", method, path, status,
			 m ? m : a.buf ? a.buf : "");
		json_decref(e);
	} else if (status < 0 && err) {
		snprintf(err, errlen, "dockerd at %s: %s %s: %s", c->socket, method, path,
			 status == -ECONNREFUSED ? "cannot connect to the socket"
			 : c->error[0]		 ? c->error
						 : strerror(-status));
	}
	if (status >= 200 && status < 300 && json && a.buf)
		*json = json_loads(a.buf, 0, NULL);
	free(a.buf);
	return status;
}

int sandbox_docker_check(const char *socket, char *msg, size_t msglen)
{
	struct docker_client c;
	json_t *v = NULL;
	int status;

	if (client_init(&c, socket) < 0)
		return -ENOMEM;
	status = client_json(&c, "GET", "/version", NULL, 10000, &v, msg, msglen);
	if (status == 200) {
		snprintf(msg, msglen, "dockerd %s (API %s) at %s",
			 json_string_value(json_object_get(v, "Version")) ?: "?",
			 json_string_value(json_object_get(v, "ApiVersion")) ?: "?", c.socket);
		status = 0;
	} else if (status >= 0) {
		status = -EPROTO;
	}
	if (status < 0 && !strstr(msg, "docker.io"))
		snprintf(msg + strlen(msg), msglen - strlen(msg),
			 " (is dockerd running? Debian: apt-get install docker.io; service docker "
			 "start)");
	json_decref(v);
	client_release(&c);
	return status;
}

/* ---- the toolchain image ---- */

static int tar_add(struct archive *ar, const char *name, mode_t mode, uint64_t size,
		   const char *symlink)
{
	struct archive_entry *e = archive_entry_new();
	int rc;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, mode);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, 0, 0);
	if (symlink)
		archive_entry_set_symlink(e, symlink);
	rc = archive_write_header(ar, e) == ARCHIVE_OK ? 0 : -EIO;
	archive_entry_free(e);
	return rc;
}

/* Add the tree under DIRFD (owned, closed here) as NAME/... to AR: directories and regular
 * files only (the tree builder's promise; anything else is refused), by dir fd, O_NOFOLLOW. */
static int tar_tree(struct archive *ar, int dirfd, const char *name, int depth, char *chunk)
{
	DIR *dir;
	struct dirent *de;
	int rc = 0;

	if (depth > TREE_DEPTH_MAX) {
		close(dirfd);
		return -ELOOP;
	}
	dir = fdopendir(dirfd);
	if (!dir) {
		close(dirfd);
		return -errno;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir))) {
		char child[4096];
		struct stat st;
		int fd;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s/%s", name, de->d_name) >= sizeof(child))
			return closedir(dir), -ENAMETOOLONG;
		fd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = -errno;
			if (fd >= 0)
				close(fd);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			rc = tar_add(ar, child, S_IFDIR | (st.st_mode & 0755), 0, NULL);
			if (rc == 0)
				rc = tar_tree(ar, fd, child, depth + 1, chunk);
			else
				close(fd);
		} else if (S_ISREG(st.st_mode)) {
			rc = tar_add(ar, child, S_IFREG | (st.st_mode & 0755), (uint64_t)st.st_size, NULL);
			for (ssize_t n; rc == 0 && (n = read(fd, chunk, COPY_CHUNK)) != 0;)
				rc = n < 0 ? -errno : archive_write_data(ar, chunk, (size_t)n) == n ? 0 : -EIO;
			close(fd);
		} else {
			close(fd);
			rc = -EINVAL;
		}
	}
	if (rc == 0 && errno)
		rc = -errno;
	closedir(dir);
	return rc;
}

/* The image's tar of TOOLCHAIN_DIR into FD (a temporary file). */
static int image_tar(const char *toolchain_dir, int fd)
{
	static const char *const mount_points[] = { "cachepot", "tmp", "proc", "dev", "etc" };
	struct archive *ar = archive_write_new();
	char *chunk = malloc(COPY_CHUNK);
	int rc = -ENOMEM, rootfd = -1;

	if (!ar || !chunk)
		goto out;
	rc = -EIO;
	if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
	    archive_write_open_fd(ar, fd) != ARCHIVE_OK)
		goto out;
	rootfd = open(toolchain_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = 0;
	for (int i = 0; rc == 0 && i < 2; i++) {
		const char *top = i == 0 ? "rust" : "usr";
		int fd2 = openat(rootfd, top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* A C part of the toolchain has usr/ alone (spec->toolchain_without_rust). */
		if (fd2 < 0 && errno == ENOENT && i == 0)
			continue;
		if (fd2 < 0) {
			rc = -errno;
			break;
		}
		rc = tar_add(ar, top, S_IFDIR | 0755, 0, NULL);
		if (rc == 0)
			rc = tar_tree(ar, fd2, top, 0, chunk);
		else
			close(fd2);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(mount_points) / sizeof(mount_points[0]); i++)
		rc = tar_add(ar, mount_points[i], S_IFDIR | (i == 1 ? 01777 : 0755), 0, NULL);
	if (rc == 0)
		rc = tar_add(ar, "lib", S_IFLNK | 0777, 0, "usr/lib");
	if (rc == 0)
		rc = tar_add(ar, "lib64", S_IFLNK | 0777, 0, "usr/lib64");
	if (rc == 0 && archive_write_close(ar) != ARCHIVE_OK)
		rc = -EIO;
out:
	if (rootfd >= 0)
		close(rootfd);
	if (ar)
		archive_write_free(ar);
	free(chunk);
	return rc;
}

static size_t read_fd(char *buf, size_t size, size_t n, void *arg)
{
	ssize_t got = read(*(int *)arg, buf, size * n);
	return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
}

/* Import the tar in FD as REPO:TAG. 0 or -errno, with the reason in ERR. */
static int image_import(struct docker_client *c, int fd, const char *tag, char *err,
			size_t errlen)
{
	char url[512];
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/x-tar");
	struct answer a = { .max = DOCKER_ANSWER_MAX };
	struct stat st;
	long status = 0;
	CURLcode cc;
	int rc;

	if (!headers)
		return -ENOMEM;
	if (fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		curl_slist_free_all(headers);
		return -errno;
	}
	snprintf(url, sizeof(url), DOCKER_URL "/images/create?fromSrc=-&repo=" IMAGE_REPO "&tag=%s",
		 tag);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, read_fd);
	curl_easy_setopt(c->curl, CURLOPT_READDATA, &fd);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)DOCKER_IMPORT_TIMEOUT_MS);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, answer_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &a);
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	/* the answer is a stream of JSON progress objects; a failure says "error" in one */
	if (cc != CURLE_OK || status != 200 || (a.buf && strstr(a.buf, "\"error"))) {
		snprintf(err, errlen, "dockerd: importing the toolchain image %s:%s: %s %ld %.300s",
			 IMAGE_REPO, tag, curl_easy_strerror(cc), status, a.buf ? a.buf : "");
		rc = -EIO;
	} else {
		rc = 0;
	}
	free(a.buf);
	return rc;
}

/* An owner label value: [0-9a-z]{1,64}, which needs no escaping in a URL's filter. */
static int owner_valid(const char *owner)
{
	size_t n = owner ? strlen(owner) : 0;

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((owner[i] >= '0' && owner[i] <= '9') || (owner[i] >= 'a' && owner[i] <= 'z')))
			return 0;
	return 1;
}

/* The image of SPEC's toolchain, imported when it is not there yet: its name in IMAGE. */
static int image_ensure(struct docker_client *c, const struct sandbox_spec *spec, char *image,
			size_t imagelen, char *err, size_t errlen)
{
	char tag[SANDBOX_TAG_MAX + 1], path[256];
	int status, fd, rc;

	if ((rc = sandbox_toolchain_tag(spec, tag)) < 0)
		return rc;
	snprintf(image, imagelen, IMAGE_REPO ":%s", tag);
	snprintf(path, sizeof(path), "/images/%s/json", image);
	pthread_mutex_lock(&import_lock);
	status = client_json(c, "GET", path, NULL, DOCKER_CALL_TIMEOUT_MS, NULL, err, errlen);
	if (status == 200) {
		rc = 0;
	} else if (status != 404) {
		rc = status < 0 ? status : -EIO;
	} else {
		fd = open("/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "a temporary file for the toolchain image: %s",
				 strerror(errno));
		} else {
			rc = image_tar(spec->toolchain_dir, fd);
			if (rc < 0)
				snprintf(err, errlen, "the tar of %s: %s", spec->toolchain_dir,
					 strerror(-rc));
			else
				rc = image_import(c, fd, tag, err, errlen);
			close(fd);
		}
	}
	pthread_mutex_unlock(&import_lock);
	return rc;
}

/* ---- one run ---- */

static int add_ulimit(json_t *ulimits, const char *name, uint64_t value)
{
	return json_array_append_new(ulimits, json_pack("{s:s, s:I, s:I}", "Name", name, "Soft",
							(json_int_t)value, "Hard", (json_int_t)value));
}

static int add_mount(json_t *mounts, const char *source, const char *target, int read_only)
{
	return json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b, s:{s:s}}", "Type",
						       "bind", "Source", source, "Target", target,
						       "ReadOnly", read_only, "BindOptions",
						       "Propagation", "rprivate"));
}

/* The body of POST /containers/create for SPEC, LIM, the image and the run's UID. */
static char *container_body(const struct sandbox_spec *spec, const struct sandbox_limits *lim,
			    const char *image, unsigned uid)
{
	json_t *cmd = json_array(), *env = json_array(), *mounts = json_array(),
	       *ulimits = json_array(), *body = NULL;
	char user[64], tmp_opts[128], log_size[32], *profile = sandbox_seccomp_docker_profile(),
	     *seccomp = NULL, *text = NULL;
	int rc = 0;

	if (!cmd || !env || !mounts || !ulimits || !profile)
		goto out;
	if (asprintf(&seccomp, "seccomp=%s", profile) < 0) {
		seccomp = NULL;
		goto out;
	}
	for (size_t i = 0; spec->argv[i]; i++)
		rc |= json_array_append_new(cmd, json_string(spec->argv[i]));
	for (size_t i = 0; spec->envp && spec->envp[i]; i++)
		rc |= json_array_append_new(env, json_string(spec->envp[i]));
	if (spec->input_dir)
		rc |= add_mount(mounts, spec->input_dir, ROOT_INPUTS, 1);
	for (size_t i = 0; i < spec->n_binds; i++)
		rc |= add_mount(mounts, spec->binds[i].host, spec->binds[i].dest, 1);
	if (spec->output_host_dir)
		rc |= add_mount(mounts, spec->output_host_dir, spec->output_dest, 0);
	/* cpu as bwrap's: SIGXCPU at the soft limit, SIGKILL one second later */
	rc |= json_array_append_new(ulimits, json_pack("{s:s, s:I, s:I}", "Name", "cpu", "Soft",
						       (json_int_t)lim->cpu_seconds, "Hard",
						       (json_int_t)lim->cpu_seconds + 1));
	rc |= add_ulimit(ulimits, "nofile", lim->max_open_files);
	rc |= add_ulimit(ulimits, "nproc", (uint64_t)lim->max_processes + 16);
	rc |= add_ulimit(ulimits, "core", 0);
	if (rc)
		goto out;
	snprintf(user, sizeof(user), "%u:%u", uid, uid);
	snprintf(tmp_opts, sizeof(tmp_opts), "rw,nosuid,nodev,size=%" PRIu64 ",mode=1777",
		 lim->tmp_bytes);
	/* the log file holds what is captured and a margin, never an unbounded stream */
	snprintf(log_size, sizeof(log_size), "%zu", 2 * lim->capture_bytes + (1u << 20));
	/* the labels let the owner's next start remove a container a crash left behind
	 * (sandbox_docker_sweep), and an operator find it:
	 * docker ps -a --filter label=cachepot.sandbox */
	body = json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:n, s:{s:s, s:s}}",
			 "Image", image, "Cmd", cmd, "Env", env, "WorkingDir",
			 spec->cwd ? spec->cwd : "/", "User", user, "Hostname", "cachepot",
			 "NetworkDisabled", 1, "AttachStdin", 0, "OpenStdin", 0, "Tty", 0,
			 "Entrypoint", "Labels", "cachepot.sandbox", "run", "cachepot.owner",
			 owner_valid(spec->docker_owner) ? spec->docker_owner : "none");
	cmd = env = NULL;
	if (!body)
		goto out;
	json_t *host = json_pack(
	    "{s:s, s:b, s:[s], s:[s, s], s:I, s:I, s:I, s:o, s:{s:s}, s:I, s:o, s:s, s:b, s:b,"
	    " s:{s:s, s:{s:s, s:s}}}",
	    "NetworkMode", "none", "ReadonlyRootfs", 1, "CapDrop", "ALL", "SecurityOpt",
	    "no-new-privileges", seccomp, "Memory", (json_int_t)lim->memory_bytes, "MemorySwap",
	    (json_int_t)lim->memory_bytes, "PidsLimit", (json_int_t)lim->max_processes, "Ulimits",
	    ulimits, "Tmpfs", "/tmp", tmp_opts, "ShmSize", (json_int_t)lim->shm_bytes, "Mounts",
	    mounts, "IpcMode", "private", "Privileged", 0, "AutoRemove", 0, "LogConfig", "Type",
	    "json-file", "Config", "max-size", log_size, "max-file", "1");
	ulimits = mounts = NULL;
	if (!host || json_object_set_new(body, "HostConfig", host) < 0)
		goto out;
	text = json_dumps(body, JSON_COMPACT);
out:
	json_decref(cmd);
	json_decref(env);
	json_decref(mounts);
	json_decref(ulimits);
	json_decref(body);
	free(profile);
	free(seccomp);
	return text;
}

/* A cgroup file of container ID while it exists (cgroup v1 under CONTROLLER/docker, or v2):
 * its first line in BUF, 0 or -errno. */
static int cgroup_read(const char *id, const char *controller, const char *file, char *buf,
		       size_t len)
{
	char path[4][512];
	int n;

	snprintf(path[0], sizeof(path[0]), "/sys/fs/cgroup/%s/docker/%s/%s", controller, id, file);
	snprintf(path[1], sizeof(path[1]), "/sys/fs/cgroup/%s/system.slice/docker-%s.scope/%s",
		 controller, id, file);
	snprintf(path[2], sizeof(path[2]), "/sys/fs/cgroup/docker/%s/%s", id, file);
	snprintf(path[3], sizeof(path[3]), "/sys/fs/cgroup/system.slice/docker-%s.scope/%s", id,
		 file);
	for (int i = 0; i < 4; i++) {
		int fd = open(path[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = (int)read(fd, buf, len - 1);
		close(fd);
		if (n < 0)
			return -errno;
		buf[n] = '\0';
		return 0;
	}
	return -ENOENT;
}

struct docker_run {
	const struct sandbox_spec *spec;
	struct sandbox_limits lim;
	uint64_t start_us;
	struct docker_client client;
	struct sandbox_hold *hold;
	unsigned uid;
	int output_mounted;
	char id[80];  /* the container's id once created, else "" */
	char err[1024];
};

/* While the container runs: whether a fork failed at its pids limit and its memory peak, read
 * from its cgroup (gone once it stops, hence read as the wait goes). */
static void run_sample(struct docker_run *run, struct sandbox_result *result)
{
	char line[256];

	if (cgroup_read(run->id, "pids", "pids.events", line, sizeof(line)) == 0) {
		const char *m = strstr(line, "max ");
		if (m && strtoull(m + 4, NULL, 10) > 0)
			result->pids_exceeded = 1;
	}
	if (cgroup_read(run->id, "memory", "memory.max_usage_in_bytes", line, sizeof(line)) == 0 ||
	    cgroup_read(run->id, "memory", "memory.peak", line, sizeof(line)) == 0) {
		uint64_t kb = strtoull(line, NULL, 10) / 1024u;
		if (kb > result->max_rss_kb)
			result->max_rss_kb = kb;
	}
}

/* Wait for the container to stop, at most until the deadline (in slices of WAIT_SLICE_MS, the
 * cgroup sampled after each); at the deadline kill it. */
#define WAIT_SLICE_MS 500
static int run_wait(struct docker_run *run, struct sandbox_result *result)
{
	char path[160];
	uint64_t deadline = run->start_us + (uint64_t)run->lim.timeout_ms * 1000u, now;
	int status = -ETIMEDOUT;

	snprintf(path, sizeof(path), "/containers/%s/wait?condition=not-running", run->id);
	while (status == -ETIMEDOUT && (now = monotonic_us()) < deadline) {
		long slice = (long)((deadline - now) / 1000 + 1);
		if (slice > WAIT_SLICE_MS)
			slice = WAIT_SLICE_MS;
		status = client_json(&run->client, "POST", path, NULL, slice, NULL, run->err,
				     sizeof(run->err));
		if (status == -ETIMEDOUT)
			run_sample(run, result);
	}
	if (status == -ETIMEDOUT) {
		char kill_path[160];
		result->timed_out = 1;
		snprintf(kill_path, sizeof(kill_path), "/containers/%s/kill?signal=KILL", run->id);
		(void)client_json(&run->client, "POST", kill_path, NULL, DOCKER_CALL_TIMEOUT_MS,
				  NULL, NULL, 0);
		status = client_json(&run->client, "POST", path, NULL, DOCKER_KILL_GRACE_MS, NULL,
				     run->err, sizeof(run->err));
	}
	return status == 200 ? 0 : status < 0 ? status : -EIO;
}

/* Exit status, OOM, pids and memory figures, and the logs of the stopped container. */
static int run_harvest(struct docker_run *run, struct sandbox_result *result)
{
	char path[200];
	json_t *info = NULL, *state;
	struct log_capture logs = { .out = { .max = run->lim.capture_bytes },
				    .err = { .max = run->lim.capture_bytes } };
	int status, rc = 0;

	result->wall_us = monotonic_us() - run->start_us;
	snprintf(path, sizeof(path), "/containers/%s/json", run->id);
	status = client_json(&run->client, "GET", path, NULL, DOCKER_CALL_TIMEOUT_MS, &info,
			     run->err, sizeof(run->err));
	state = json_object_get(info, "State");
	if (status != 200 || !json_is_object(state)) {
		json_decref(info);
		return status < 0 ? status : -EIO;
	}
	if (result->timed_out) {
		result->term_signal = SIGKILL;
	} else {
		result->exited = 1;
		result->exit_status = (int)json_integer_value(json_object_get(state, "ExitCode"));
	}
	result->memory_exceeded = json_is_true(json_object_get(state, "OOMKilled"));
	json_decref(info);
	run_sample(run, result);

	snprintf(path, sizeof(path), "/containers/%s/logs?stdout=1&stderr=1", run->id);
	status = client_call(&run->client, "GET", path, NULL, DOCKER_CALL_TIMEOUT_MS, NULL, &logs);
	if (status != 200) {
		snprintf(run->err, sizeof(run->err), "dockerd: the logs of container %.12s: %d",
			 run->id, status);
		rc = status < 0 ? status : -EIO;
	}
	result->output_truncated = logs.truncated;
	if (rc == 0 && !logs.out.buf && !(logs.out.buf = calloc(1, 1)))
		rc = -ENOMEM;
	if (rc == 0 && !logs.err.buf && !(logs.err.buf = calloc(1, 1)))
		rc = -ENOMEM;
	if (rc == 0) {
		result->out = logs.out.buf;
		result->out_len = logs.out.len;
		result->err = logs.err.buf;
		result->err_len = logs.err.len;
	} else {
		free(logs.out.buf);
		free(logs.err.buf);
	}
	return rc;
}

static int run_container(struct docker_run *run, struct sandbox_result *result)
{
	char image[SANDBOX_TAG_MAX + 64], path[160], *body;
	json_t *created = NULL;
	const char *id;
	int status, rc;

	rc = image_ensure(&run->client, run->spec, image, sizeof(image), run->err, sizeof(run->err));
	if (rc < 0)
		return rc;
	body = container_body(run->spec, &run->lim, image, run->uid);
	if (!body)
		return -ENOMEM;
	status = client_json(&run->client, "POST", "/containers/create", body,
			     DOCKER_CALL_TIMEOUT_MS, &created, run->err, sizeof(run->err));
	free(body);
	id = json_string_value(json_object_get(created, "Id"));
	if (status != 201 || !id || strlen(id) >= sizeof(run->id)) {
		json_decref(created);
		return status < 0 ? status : -EIO;
	}
	snprintf(run->id, sizeof(run->id), "%s", id);
	json_decref(created);
	for (const char *p = run->id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EIO;
	snprintf(path, sizeof(path), "/containers/%s/start", run->id);
	status = client_json(&run->client, "POST", path, NULL, DOCKER_CALL_TIMEOUT_MS, NULL,
			     run->err, sizeof(run->err));
	if (status != 204)
		return status < 0 ? status : -EIO; /* e.g. argv[0] not in the image */
	rc = run_wait(run, result);
	if (rc == 0)
		rc = run_harvest(run, result);
	return rc;
}

int sandbox_docker_run(const struct sandbox_spec *spec, struct sandbox_result *result)
{
	struct docker_run run = { .spec = spec };
	int rc;

	memset(result, 0, sizeof(*result));
	if (geteuid() != 0)
		return -EPERM;
	sandbox_fill_limits(&spec->limits, &run.lim);
	run.start_us = monotonic_us();
	if ((rc = client_init(&run.client, spec->docker_socket)) < 0)
		return rc;
	run.hold = malloc(sizeof(*run.hold));
	if (!run.hold) {
		rc = -ENOMEM;
		goto out;
	}
	*run.hold = (struct sandbox_hold){ .uid_lease = -1, .output_fd = -1 };
	rc = sandbox_uid_lease((uint64_t)syscall(SYS_gettid) * 2654435761u + run.start_us, &run.uid);
	if (rc < 0)
		goto out;
	run.hold->uid_lease = rc;
	if (spec->output_host_dir &&
	    (rc = sandbox_mount_output(spec, &run.lim, run.uid, run.uid, run.hold,
				       &run.output_mounted)) < 0)
		goto out;
	rc = run_container(&run, result);
out:
	if (run.id[0]) {
		char path[160];
		snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", run.id);
		(void)client_json(&run.client, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS, NULL,
				  NULL, 0);
	}
	client_release(&run.client);
	if (rc == 0) {
		result->uid = run.uid;
		result->hold = run.hold;
		return 0;
	}
	sandbox_hold_free(run.hold);
	if (run.output_mounted)
		(void)sandbox_output_release(spec->output_host_dir);
	free(result->out);
	free(result->err);
	memset(result, 0, sizeof(*result));
	result->err = strdup(run.err);
	result->err_len = result->err ? strlen(result->err) : 0;
	if (rc != -ENOMEM && rc != -EINVAL && rc != -EPERM && rc != -EAGAIN)
		rc = -EIO;
	return rc;
}

int sandbox_docker_sweep(const char *socket, const char *owner, unsigned *removed, char *msg,
			 size_t msglen)
{
	struct docker_client c;
	char path[256];
	json_t *list = NULL, *item;
	size_t i;
	int status, rc = 0;

	*removed = 0;
	if (!owner_valid(owner)) {
		snprintf(msg, msglen, "owner '%s' is not [0-9a-z]{1,64}", owner ? owner : "");
		return -EINVAL;
	}
	if ((rc = client_init(&c, socket)) < 0) {
		snprintf(msg, msglen, "%s", strerror(-rc));
		return rc;
	}
	/* filters={"label":["cachepot.owner=OWNER"]}, URL-encoded */
	snprintf(path, sizeof(path),
		 "/containers/json?all=1&filters=%%7B%%22label%%22%%3A%%5B%%22cachepot.owner%%3D%s"
		 "%%22%%5D%%7D",
		 owner);
	status = client_json(&c, "GET", path, NULL, DOCKER_CALL_TIMEOUT_MS, &list, msg, msglen);
	if (status != 200 || !json_is_array(list)) {
		if (status == 200)
			snprintf(msg, msglen, "dockerd: GET /containers/json: not a list");
		rc = status < 0 ? status : -EIO;
		goto out;
	}
	json_array_foreach(list, i, item) {
		const char *id = json_string_value(json_object_get(item, "Id"));
		size_t n = id ? strlen(id) : 0;

		if (n == 0 || n > 128 || strspn(id, "0123456789abcdef") != n)
			continue;
		snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
		status = client_json(&c, "DELETE", path, NULL, DOCKER_CALL_TIMEOUT_MS, NULL, msg,
				     msglen);
		if (status == 204 || status == 404) /* 404: it went away meanwhile */
			(*removed)++;
		else if (rc == 0)
			rc = status < 0 ? status : -EIO;
	}
out:
	json_decref(list);
	client_release(&c);
	return rc;
}
