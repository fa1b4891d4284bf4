/* If-None-Match against one entity tag; see etag.h. */
#include "config.h"

#include "daemon/etag.h"

#include <string.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

int etag_matches(const char *header, const char *tag)
{
	size_t tag_len = strlen(tag);
	const char *p = header;

	if (!header || strnlen(header, ETAG_HEADER_MAX + 1) > ETAG_HEADER_MAX)
		return 0;
	while (is_space(*p))
		p++;
	if (p[0] == '*') {
		for (p++; is_space(*p); p++)
			;
		return *p == '\0';
	}
	for (;;) {
		const char *open, *close;

		while (is_space(*p) || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return 0;
		open = p + 1;
		close = strchr(open, '"');
		if (!close)
			return 0;
		if ((size_t)(close - open) == tag_len && memcmp(open, tag, tag_len) == 0)
			return 1;
		p = close + 1;
		while (is_space(*p))
			p++;
		if (*p != ',' && *p != '\0')
			return 0;
	}
}
