/* The sandbox interface; the bubblewrap backend is being written (issue 4). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"

void sandbox_limits_default(struct sandbox_limits *limits)
{
	limits->timeout_ms = 10 * 60 * 1000;
	limits->cpu_seconds = 10 * 60;
	limits->memory_bytes = 4ull << 30;
	limits->max_processes = 256;
	limits->max_open_files = 1024;
	limits->output_bytes = 1ull << 30;
	limits->tmp_bytes = 256ull << 20;
	limits->capture_bytes = 16u << 20;
}

int sandbox_run(const struct sandbox_spec *spec, struct sandbox_result *result)
{
	memset(result, 0, sizeof(*result));
	if (!spec || !spec->toolchain_dir || !spec->argv || !spec->argv[0])
		return -EINVAL;
	return -ENOSYS;
}

void sandbox_result_release(struct sandbox_result *result)
{
	free(result->out);
	free(result->err);
	memset(result, 0, sizeof(*result));
}

int sandbox_output_release(const char *output_host_dir)
{
	(void)output_host_dir;
	return -ENOSYS;
}
