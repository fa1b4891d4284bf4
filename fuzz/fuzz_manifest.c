/* libFuzzer target: the manifest parser (fs/manifest.h), which reads signed text from the store
 * and from peers.
 *
 * An Ed25519 signature is a wall no fuzzer climbs, so the input is used twice. First as the
 * signed text itself, which exercises the JSON and signature-envelope checks. Then, when it is
 * a JSON object, as the body of a manifest: the harness signs it with a fixed test key and wraps
 * it the way manifest_sign does, so the field checks behind the signature (manifest_from_json)
 * are reached too. A manifest that parses must validate, re-sign with manifest_sign, and parse
 * back to the same result.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/hex.h"
#include "fs/manifest.h"

#define SIG_SIZE 64
#define PUBKEY_SIZE 32

/* A fixed key: runs are reproducible and a crash input replays the same way. */
static EVP_PKEY *test_key(void)
{
	static EVP_PKEY *key;
	static const unsigned char seed[32] = "cachepot fuzz_manifest test key";
	if (!key)
		key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (!key)
		abort();
	return key;
}

static json_t *hex_json(const unsigned char *bytes, size_t n)
{
	char hex[2 * SIG_SIZE + 1];
	hex_encode(bytes, n, hex);
	return json_string(hex);
}

static void check_parsed(const struct manifest *m)
{
	struct manifest again;
	char *text = NULL;
	size_t len = 0;

	if (manifest_validate(m) != 0)
		abort();
	if (manifest_sign(m, test_key(), &text, &len) != 0)
		return; /* out of memory */
	if (manifest_parse(text, len, &again) == 0) {
		if (!manifest_same_result(m, &again))
			abort();
		manifest_release(&again);
	} else {
		abort();
	}
	free(text);
}

static void parse_text(const char *text, size_t len)
{
	struct manifest m;
	int ret = manifest_parse(text, len, &m);

	if (ret == 0) {
		check_parsed(&m);
		manifest_release(&m);
	} else if (ret != -EBADMSG && ret != -ENOMEM) {
		abort();
	}
}

/* Sign OBJ as a manifest body and parse the result. */
static void parse_signed(json_t *obj)
{
	EVP_PKEY *key = test_key();
	unsigned char sig[SIG_SIZE], pub[PUBKEY_SIZE];
	size_t sig_len = sizeof(sig), pub_len = sizeof(pub);
	char *canonical = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	char *text = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	json_t *whole = NULL;

	if (!canonical || !ctx)
		goto out;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1
	    || EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)canonical,
	                      strlen(canonical)) != 1
	    || EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1)
		abort();
	whole = json_pack("{s:O, s:{s:s, s:o, s:o}}", "manifest", obj, "signature", "algorithm",
	                  "ed25519", "public_key", hex_json(pub, pub_len), "value",
	                  hex_json(sig, sig_len));
	text = whole ? json_dumps(whole, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (text)
		parse_text(text, strlen(text));
out:
	free(text);
	json_decref(whole);
	EVP_MD_CTX_free(ctx);
	free(canonical);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *obj;

	parse_text((const char *)data, size);
	obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (json_is_object(obj))
		parse_signed(obj);
	json_decref(obj);
	return 0;
}
