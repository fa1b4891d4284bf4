/* `cachepot verify KEY`; see verify.h. */
#include "config.h"

#include "client/verify.h"

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
#include "client/submit.h"
#include "hash/digest.h"

extern char **environ;

int verify_command(const struct client_config *config, int argc, char **argv)
{
	char helper[PATH_MAX];
	char *helper_argv[] = { helper, NULL };
	posix_spawn_file_actions_t fa;
	void (*old_pipe)(int);
	json_t *doc;
	char *text;
	int in[2], status, ret;
	pid_t pid;

	if (argc != 1 || !digest_hex_valid(argv[0])) {
		fprintf(stderr, "usage: cachepot verify KEY   (KEY: the 64 lowercase hex digits of a "
			"published key, as ac/<key> in the mount)\n");
		return 2;
	}
	doc = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:s}", "socket", config->socket,
			"server", config->server, "tls_cert", config->tls_cert, "tls_key", config->tls_key,
			"cacert", config->cacert, "timeout", (int)config->timeout, "verify", argv[0]);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text) {
		fprintf(stderr, "cachepot verify: out of memory\n");
		return 2;
	}
	sibling_program("cachepot-submit", PKGLIBEXECDIR, helper, sizeof(helper));
	if (pipe2(in, O_CLOEXEC) < 0) {
		fprintf(stderr, "cachepot verify: pipe: %s\n", strerror(errno));
		free(text);
		return 2;
	}
	/* The helper's stdout and stderr are ours: the answer and its errors go to the user. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	ret = posix_spawn(&pid, helper, &fa, NULL, helper_argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	if (ret != 0) {
		fprintf(stderr, "cachepot verify: cannot run %s: %s\n", helper, strerror(ret));
		close(in[1]);
		free(text);
		return 2;
	}
	old_pipe = signal(SIGPIPE, SIG_IGN);
	(void)!io_write_all(in[1], text, strlen(text));   /* a helper that died tells by its status */
	close(in[1]);
	signal(SIGPIPE, old_pipe);
	free(text);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "cachepot verify: waitpid: %s\n", strerror(errno));
			return 2;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == SUBMIT_EXIT_VERIFY_DIFFERENT) {
		fprintf(stderr, "cachepot verify: %s does not build reproducibly: the outputs above "
			"differ from the published ones (the key is marked; its outputs stay as "
			"published)\n", argv[0]);
		return 1;
	}
	return 2;
}
