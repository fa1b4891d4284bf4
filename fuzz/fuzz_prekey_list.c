/* libFuzzer target: the pre-key lists parser (fs/prekey_list.h), which reads signed text from
 * the store, from the mount and from a remote worker over HTTP.
 *
 * As fuzz_manifest does, the input is used twice: as the signed text itself (the JSON and the
 * envelope's checks), and, when it is a JSON object, as the body signed with a fixed test key
 * (signed_object_sign), so the checks behind the signature are reached: the version, the
 * pre-key asked for, the bound on lists and the shape and paths of each (hash/prekey.h). Lists
 * that pass must each be valid, sign again with prekey_lists_sign and read back equal, and take
 * one more list in front without growing past PREKEY_LISTS_MAX.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "fs/manifest.h"
#include "fs/prekey_list.h"
#include "hash/digest.h"
#include "hash/prekey.h"

/* The pre-key every input is read for, unless a body names another valid one. */
static const char fixed_prekey[65] = "5f0c3a8e1b7d29466a0e4f1c8b2d7a39e6c1f05b4d8a27e3c9f16b0a4d52e873";

static EVP_PKEY *test_key(void)
{
	static EVP_PKEY *key;
	static const unsigned char seed[32] = "cachepot fuzz_prekey test key..";
	if (!key)
		key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (!key)
		abort();
	return key;
}

static void test_public_key(unsigned char pub[32])
{
	size_t len = 32;
	if (EVP_PKEY_get_raw_public_key(test_key(), pub, &len) != 1 || len != 32)
		abort();
}

static void check_lists(const char prekey[65], json_t *lists, const unsigned char pub[32])
{
	json_t *again = NULL, *grown;
	char *text = NULL;
	size_t len = 0, i;
	int changed;
	json_t *v;

	if (!json_is_array(lists) || json_array_size(lists) > PREKEY_LISTS_MAX)
		abort();
	json_array_foreach(lists, i, v)
		if (!prekey_list_valid(v))
			abort();
	if (prekey_lists_sign(prekey, lists, test_key(), &text, &len) != 0)
		return; /* out of memory */
	if (prekey_lists_verify(text, len, pub, prekey, &again) != 0 || !json_equal(again, lists))
		abort();
	free(text);
	json_decref(again);
	if (json_array_size(lists)) {
		grown = prekey_lists_add(lists, json_array_get(lists, json_array_size(lists) - 1), &changed);
		if (grown && (json_array_size(grown) > PREKEY_LISTS_MAX || json_array_size(grown) > json_array_size(lists)))
			abort();
		json_decref(grown);
	}
}

static void parse_text(const char *text, size_t len, const char prekey[65])
{
	unsigned char pub[32];
	json_t *lists = NULL;
	int ret;

	test_public_key(pub);
	ret = prekey_lists_verify(text, len, pub, prekey, &lists);
	if (ret == 0)
		check_lists(prekey, lists, pub);
	else if (ret != -EBADMSG && ret != -ENOMEM)
		abort();
	json_decref(lists);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *obj;

	parse_text((const char *)data, size, fixed_prekey);
	obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (json_is_object(obj)) {
		const char *named = json_string_value(json_object_get(obj, "prekey"));
		char *text = NULL;
		size_t len = 0;
		if (signed_object_sign(PREKEY_LISTS_FIELD, obj, test_key(), &text, &len) == 0)
			parse_text(text, len, named && digest_hex_valid(named) ? named : fixed_prekey);
		free(text);
	}
	json_decref(obj);
	return 0;
}
