/* libFuzzer target: the dep-info parser (hash/depinfo.h).
 *
 * The input is the dep-info text itself, passed as libFuzzer's exact-size buffer (not
 * NUL-terminated, as depinfo_parse allows), so any read past its end is caught by ASan. Checks
 * beyond "no crash": only the documented errors come back; on success every file is a non-empty
 * string listed once, every env-dep has a non-empty name without '=', and the bounds hold.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash/depinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct depinfo d;
	int ret = depinfo_parse((const char *)data, size, &d);

	if (ret == -EINVAL || ret == -E2BIG || ret == -ENOMEM) {
		/* Released on error: the struct is left zeroed. */
		if (d.files || d.n_files || d.env || d.n_env)
			abort();
		return 0;
	}
	if (ret != 0)
		abort();
	if (d.n_files > DEPINFO_FILES_MAX || d.n_env > DEPINFO_ENV_MAX)
		abort();
	for (size_t i = 0; i < d.n_files; i++) {
		if (!d.files[i] || !d.files[i][0])
			abort();
		/* Small inputs only: the check is quadratic. */
		for (size_t j = 0; j < i && d.n_files < 512; j++)
			if (strcmp(d.files[i], d.files[j]) == 0)
				abort();
	}
	for (size_t i = 0; i < d.n_env; i++)
		if (!d.env[i].name || !d.env[i].name[0] || strchr(d.env[i].name, '='))
			abort();
	depinfo_release(&d);
	return 0;
}
