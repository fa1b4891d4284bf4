/* The wrapper's side of cachepot-submit; see submit.h. */
#include "config.h"

#include "client/submit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "base/io.h"

extern char **environ;

void sibling_program(const char *name, const char *fallback_dir, char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (snprintf(out, len, "%s/%s", self, name) < (int)len && access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "%s/%s", fallback_dir, name);
}

static json_t *submission(const struct client_config *config, const struct invocation *inv)
{
	char key[DIGEST_HEX_SIZE];
	json_t *doc, *locals = json_object(), *files = toolchain_files_to_json(&inv->toolchain);

	digest_to_hex(inv->key, key);
	for (size_t i = 0; locals && i < inv->job.n_inputs; i++)
		json_object_set_new(locals, inv->job.inputs[i].path, json_string(inv->input_local[i]));
	doc = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:i,s:s,s:o,s:o,s:{s:s,s:o}}", "socket", config->socket,
			"server", config->server, "tls_cert", config->tls_cert, "tls_key", config->tls_key,
			"cacert", config->cacert, "cache_dir", config->cache_dir, "timeout", (int)config->timeout,
			"key", key, "job", job_to_json(&inv->job), "input_local", locals, "toolchain", "id",
			inv->toolchain.id, "files", files);
	if (doc && inv->link.id[0])
		json_object_set_new(doc, "link_toolchain", json_pack("{s:s,s:o}", "id", inv->link.id, "files",
								    toolchain_files_to_json(&inv->link)));
	return doc;
}


enum submit_result submit_via_helper(const struct client_config *config, const struct invocation *inv,
				     char *err, size_t errlen)
{
	char helper[PATH_MAX];
	char *argv[] = { helper, NULL };
	posix_spawn_file_actions_t fa;
	int in[2] = { -1, -1 }, errp[2] = { -1, -1 }, status, ret;
	json_t *doc = submission(config, inv);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	size_t got = 0;
	pid_t pid;
	void (*old_pipe)(int);

	json_decref(doc);
	err[0] = '\0';
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return SUBMIT_ERROR;
	}
	sibling_program("cachepot-submit", PKGLIBEXECDIR, helper, sizeof(helper));
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(text);
		return SUBMIT_ERROR;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	ret = posix_spawn(&pid, helper, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(errp[1]);
	if (ret != 0) {
		snprintf(err, errlen, "cannot run %s: %s", helper, strerror(ret));
		close(in[1]);
		close(errp[0]);
		free(text);
		return SUBMIT_ERROR;
	}
	/* A helper that dies early must not kill the wrapper with SIGPIPE. */
	old_pipe = signal(SIGPIPE, SIG_IGN);
	/* A short write means the helper died; its status says why. */
	(void)!io_write_all(in[1], text, strlen(text));
	close(in[1]);
	signal(SIGPIPE, old_pipe);
	free(text);
	for (;;) {
		char sink[512];
		char *dst = got + 1 < errlen ? err + got : sink;
		size_t room = got + 1 < errlen ? errlen - 1 - got : sizeof(sink);
		ssize_t r = read(errp[0], dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst != sink)
			got += (size_t)r;
	}
	err[got < errlen ? got : errlen - 1] = '\0';
	err[strcspn(err, "\n")] = '\0';
	close(errp[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return SUBMIT_ERROR;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return SUBMIT_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SUBMIT_EXIT_COMPILE_FAILED)
		return SUBMIT_COMPILE_FAILED;
	if (!err[0])
		snprintf(err, errlen, "%s ended with status %d", helper, status);
	return SUBMIT_ERROR;
}
