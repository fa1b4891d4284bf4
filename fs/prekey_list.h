/* Published pre-key lists: what the daemon publishes with each result so that a machine that
 * never built a job can find it without rustc's dep-info pass (direct mode for every machine;
 * the pre-key and a list are defined in hash/prekey.h).
 *
 * Signed text (v1), in the envelope of fs/manifest.h under the field "prekey_lists":
 *
 *   {"prekey_lists":{"version":1,"prekey":"<hex>","lists":[LIST,...]},"signature":{...}}
 *
 * lists holds at most PREKEY_LISTS_MAX lists, newest first. Several can be valid for one
 * pre-key: the argv names the crate root, not what it contains, so a source that gains a `mod`
 * or an include_str! changes the set of files while the pre-key stays. Keeping only the first
 * would leave every later checkout of such a crate without a list for good; keeping every one
 * would let a pre-key's object grow with each edit. A few, newest first, serve the checkouts
 * being built now (a CI runner builds a recent commit) and bound what a client tries: one key
 * computed and looked up per list, no more.
 *
 * Unlike a manifest, the object of a pre-key changes (a new list goes in front), so it is not
 * immutable: readers must not cache it for long (cachepotd answers it with no-cache and an
 * ETag of its content). A reader trusts it only for its signature and for naming the pre-key
 * asked for (a list of pre-key A served for B is refused). Even a list that passes is only a
 * hint: the client computes the full key over the files it names, hashed locally, and serves a
 * hit only from a manifest published under that exact key.
 *
 * Functions return 0 or a negative errno; a text of the wrong shape or signature is -EBADMSG.
 */
#ifndef CACHEPOT_FS_PREKEY_LIST_H
#define CACHEPOT_FS_PREKEY_LIST_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fs/manifest.h"

#define PREKEY_LISTS_VERSION 1
#define PREKEY_LISTS_MAX 4
#define PREKEY_LISTS_FIELD "prekey_lists"
#define PREKEY_LISTS_MAX_TEXT (64u << 20)  /* the largest signed text a reader accepts */

/* Sign LISTS (a JSON array of lists, borrowed) as the object of PREKEY_HEX with KEY: *TEXT
 * (malloc'd, NUL-terminated, caller frees) of *LEN bytes. -EINVAL when LISTS is not an array
 * of at most PREKEY_LISTS_MAX valid lists. */
int prekey_lists_sign(const char prekey_hex[65], json_t *lists, EVP_PKEY *key, char **text,
                      size_t *len) __attribute__((warn_unused_result));

/* Parse TEXT, check its signature against PUBLIC_KEY (32 raw bytes), that it names PREKEY_HEX
 * and that every list has the shape of hash/prekey.h: *LISTS the array (a new reference).
 * 0, -EBADMSG, -ENOMEM. */
int prekey_lists_verify(const char *text, size_t len, const unsigned char public_key[32],
                        const char prekey_hex[65], json_t **lists) __attribute__((warn_unused_result));

/* prekey_lists_verify against each key of TRUST in turn (-EBADMSG when none signed it). */
int prekey_lists_verify_trusted(const char *text, size_t len, const struct manifest_trust *trust,
                                const char prekey_hex[65], json_t **lists)
    __attribute__((warn_unused_result));

/* LIST put in front of LISTS (NULL for none): a new array with LIST first, then the lists of
 * LISTS that differ from it in their order, at most PREKEY_LISTS_MAX in all (the oldest leave).
 * NULL on allocation failure. *CHANGED is 0 when the result equals LISTS (LIST was first
 * already). */
json_t *prekey_lists_add(const json_t *lists, json_t *list, int *changed);

#endif
