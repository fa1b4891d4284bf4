/* libFuzzer target: If-None-Match as a client sends it (daemon/etag.h).
 *
 * The input is the header's value; evhttp hands it over NUL-terminated, so it is copied into an
 * exact-size buffer and cut at its first NUL. Checks beyond "no crash": the answer is 0 or 1;
 * a match names the tag (quoted, optionally W/) or is "*" alone, so a 304 is never given for a
 * header that does not name the blob or manifest asked for; and an overlong header never
 * matches.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/etag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TAG "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header = malloc(size + 1);
	size_t len;
	int r;

	if (!header)
		return 0;
	memcpy(header, data, size);
	header[size] = '\0';
	len = strlen(header);
	r = etag_matches(header, TAG);
	if (r != 0 && r != 1)
		abort();
	if (r == 1) {
		if (len > ETAG_HEADER_MAX)
			abort();
		if (!strstr(header, "\"" TAG "\"") && !strchr(header, '*'))
			abort();
	}
	if (etag_matches(header, "") && !strstr(header, "\"\"") && !strchr(header, '*'))
		abort();
	free(header);
	return 0;
}
