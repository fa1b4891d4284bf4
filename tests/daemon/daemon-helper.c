/* Test helper for tests/daemon: what the daemon computes, for shell tests to build requests.
 *   daemon-helper key < JOB.json         the v1 key of the job (any "expected_key" ignored)
 *   daemon-helper toolchain-id DIR       the id of a toolchain tree
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hash/digest.h"
#include "hash/job.h"
#include "hash/toolchain.h"

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "key") == 0) {
		json_error_t jerr;
		json_t *json = json_loadf(stdin, 0, &jerr);
		struct job job;
		unsigned char key[DIGEST_SIZE];
		char hex[DIGEST_HEX_SIZE], err[256];

		if (!json) {
			fprintf(stderr, "daemon-helper: %s\n", jerr.text);
			return 1;
		}
		json_object_del(json, "expected_key");
		if (job_from_json(json, &job, err, sizeof(err)) < 0) {
			fprintf(stderr, "daemon-helper: %s\n", err);
			json_decref(json);
			return 1;
		}
		json_decref(json);
		if (job_key(&job, key, NULL) < 0) {
			job_release(&job);
			return 1;
		}
		job_release(&job);
		digest_to_hex(key, hex);
		printf("%s\n", hex);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "toolchain-id") == 0) {
		char hex[DIGEST_HEX_SIZE];
		int fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int ret;
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
		ret = toolchain_id_of_tree(fd, hex);
		close(fd);
		if (ret < 0) {
			fprintf(stderr, "daemon-helper: %s: %s\n", argv[2], strerror(-ret));
			return 1;
		}
		printf("%s\n", hex);
		return 0;
	}
	fprintf(stderr, "usage: daemon-helper key < JOB.json | daemon-helper toolchain-id DIR\n");
	return 2;
}
