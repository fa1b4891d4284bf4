/* Published pre-key lists: signing, verification, the newest-first set; see prekey_list.h. */
#include "config.h"

#include "fs/prekey_list.h"

#include <errno.h>
#include <string.h>

#include "hash/digest.h"
#include "hash/prekey.h"

static int lists_valid(const json_t *lists)
{
	size_t i;
	json_t *v;

	if (!json_is_array(lists) || json_array_size(lists) > PREKEY_LISTS_MAX)
		return 0;
	json_array_foreach(lists, i, v)
		if (!prekey_list_valid(v))
			return 0;
	return 1;
}

int prekey_lists_sign(const char prekey_hex[65], json_t *lists, EVP_PKEY *key, char **text,
                      size_t *len)
{
	json_t *obj;
	int ret;

	if (!digest_hex_valid(prekey_hex) || !lists_valid(lists))
		return -EINVAL;
	obj = json_pack("{s:i, s:s, s:O}", "version", PREKEY_LISTS_VERSION, "prekey", prekey_hex,
	                "lists", lists);
	if (!obj)
		return -ENOMEM;
	ret = signed_object_sign(PREKEY_LISTS_FIELD, obj, key, text, len);
	json_decref(obj);
	return ret;
}

int prekey_lists_verify(const char *text, size_t len, const unsigned char public_key[32],
                        const char prekey_hex[65], json_t **lists)
{
	json_t *obj = NULL, *version, *got;
	const char *prekey;
	int ret;

	*lists = NULL;
	ret = signed_object_verify(text, len, PREKEY_LISTS_MAX_TEXT, PREKEY_LISTS_FIELD, public_key, &obj);
	if (ret < 0)
		return ret;
	version = json_object_get(obj, "version");
	prekey = json_string_value(json_object_get(obj, "prekey"));
	got = json_object_get(obj, "lists");
	if (!json_is_integer(version) || json_integer_value(version) != PREKEY_LISTS_VERSION || !prekey
	    || strcmp(prekey, prekey_hex) != 0 || !lists_valid(got)) {
		json_decref(obj);
		return -EBADMSG;
	}
	*lists = json_incref(got);
	json_decref(obj);
	return 0;
}

int prekey_lists_verify_trusted(const char *text, size_t len, const struct manifest_trust *trust,
                                const char prekey_hex[65], json_t **lists)
{
	int ret = -EBADMSG;
	*lists = NULL;
	for (size_t i = 0; i < trust->n_keys && ret == -EBADMSG; i++)
		ret = prekey_lists_verify(text, len, trust->keys[i], prekey_hex, lists);
	return ret;
}

json_t *prekey_lists_add(const json_t *lists, json_t *list, int *changed)
{
	json_t *out = json_array(), *v;
	size_t i;

	*changed = !json_is_array(lists) || json_array_size(lists) == 0
	           || !json_equal(json_array_get(lists, 0), list);
	if (!out || json_array_append(out, list) < 0) {
		json_decref(out);
		return NULL;
	}
	json_array_foreach(lists, i, v) {
		if (json_array_size(out) >= PREKEY_LISTS_MAX)
			break;
		if (!json_equal(v, list) && json_array_append(out, v) < 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}
