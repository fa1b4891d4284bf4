/* libFuzzer target: the rustc argument parser (hash/args.h).
 *
 * The input is a command line with its arguments separated by NUL bytes (a final NUL is
 * optional). Each argument gets its own exact-size allocation, so a read past the end of one
 * is caught by ASan instead of running on into the next. Arguments that name an @argfile are
 * dropped: the parser would open them, and a fuzzer must not read whatever paths it invents.
 * The argfile splitter is fuzzed on the raw bytes instead, which is what an @argfile's
 * contents reach. Checks beyond "no crash": the indices the parser returns are in range, the
 * reason is a known one with a terminated detail, a cacheable invocation has its root and
 * --out-dir, and the splitter never returns more arguments than the input has lines.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash/args.h"

static void check_parsed(const struct rustc_args *args)
{
	if (args->input_index < -1 || (args->input_index >= 0 && (size_t)args->input_index >= args->argc))
		abort();
	if (args->out_dir_index < -1
	    || (args->out_dir_index >= 0 && (size_t)args->out_dir_index >= args->argc))
		abort();
	if ((unsigned)args->reason >= RUSTC_REASON_COUNT || !rustc_reason_name(args->reason))
		abort();
	if (!memchr(args->reason_detail, '\0', sizeof(args->reason_detail)))
		abort();
	if (args->reason == RUSTC_CACHEABLE && (args->input_index < 0 || !args->out_dir))
		abort();
	for (size_t i = 0; i < args->argc; i++)
		if (!args->argv[i])
			abort();
	for (size_t i = 0; i < args->n_externs; i++)
		if (!args->externs[i].name || !args->externs[i].name[0])
			abort();
}

static void fuzz_parse(const uint8_t *data, size_t size)
{
	struct rustc_args args;
	char **argv = NULL;
	size_t argc = 0, start = 0;

	/* At most one argument per byte, plus one for an unterminated tail. */
	argv = calloc(size + 1, sizeof(*argv));
	if (!argv)
		return;
	while (start < size) {
		const uint8_t *nul = memchr(data + start, '\0', size - start);
		size_t end = nul ? (size_t)(nul - data) : size;
		const char *a = (const char *)data + start;
		size_t len = end - start;

		start = end + 1;
		if (len > 1 && a[0] == '@')
			continue;
		argv[argc] = strndup(a, len);
		if (!argv[argc])
			goto out;
		argc++;
	}
	if (rustc_args_parse(&args, (int)argc, argv) == 0) {
		check_parsed(&args);
		rustc_args_release(&args);
	}
out:
	for (size_t i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}

static void fuzz_argfile(const uint8_t *data, size_t size)
{
	char **list = NULL;
	size_t n = 0, lines = 1;
	int ret = rustc_argfile_split((const char *)data, size, &list, &n);

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (ret != 0 && ret != -ENOMEM && ret != -E2BIG)
		abort();
	if (n > lines || n > RUSTC_ARGS_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parse(data, size);
	fuzz_argfile(data, size);
	return 0;
}
