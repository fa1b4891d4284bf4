/* Entity tags of the immutable answers (manifests and blobs) and the If-None-Match test.
 *
 * A manifest's tag is "<key>", a blob's "<sha256>": the name already is the content's identity,
 * so the tag is strong and costs nothing to compute. An HTTP cache in front of the worker (nginx,
 * squid) revalidates with If-None-Match and gets 304 without the body.
 */
#ifndef CACHEPOT_DAEMON_ETAG_H
#define CACHEPOT_DAEMON_ETAG_H

#include <stddef.h>

#define ETAG_HEADER_MAX 8192          /* the longest If-None-Match value looked at */

/* Does the If-None-Match value HEADER (NULL: absent) match the entity tag whose opaque part
 * (the text between the quotes) is TAG? HEADER is "*" or a comma-separated list of entity
 * tags, each "..." or W/"..."; If-None-Match compares weakly (RFC 9110 13.1.2), so W/"x"
 * matches "x". A malformed list, or one longer than ETAG_HEADER_MAX, matches nothing: the
 * answer is then the full 200, which is never wrong. */
int etag_matches(const char *header, const char *tag);

#endif
