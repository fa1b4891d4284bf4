/* Manifests: JSON (jansson) encoding, Ed25519 signature (OpenSSL EVP). Format in fs/manifest.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/hex.h"
#include "base/io.h"
#include "base/path.h"
#include "fs/manifest.h"
#include "hash/digest.h"

#define SIG_SIZE 64
#define PUBKEY_SIZE 32

void manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
}

void manifest_release(struct manifest *m)
{
	for (size_t i = 0; i < m->n_outputs; i++)
		free(m->outputs[i].name);
	free(m->outputs);
	free(m->worker);
	memset(m, 0, sizeof(*m));
}

int manifest_output_name_valid(const char *name)
{
	size_t len = strnlen(name, MANIFEST_MAX_NAME + 1);
	return len <= MANIFEST_MAX_NAME && path_component_valid(name, len)
	       && strcmp(name, MANIFEST_NAME) != 0;
}

static int compare_outputs_by_name(const void *a, const void *b)
{
	const struct manifest_output *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* Pointers to M's outputs sorted by name (malloc'd), or NULL with n_outputs == 0 / on ENOMEM. */
static const struct manifest_output **sorted_outputs(const struct manifest *m)
{
	if (m->n_outputs == 0)
		return NULL;
	const struct manifest_output **v = calloc(m->n_outputs, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < m->n_outputs; i++)
		v[i] = &m->outputs[i];
	qsort(v, m->n_outputs, sizeof(*v), compare_outputs_by_name);
	return v;
}

int manifest_validate(const struct manifest *m)
{
	if (!digest_hex_valid(m->key) || !digest_hex_valid(m->toolchain))
		return -EINVAL;
	if (m->n_outputs > MANIFEST_MAX_OUTPUTS || (m->n_outputs && !m->outputs))
		return -EINVAL;
	for (size_t i = 0; i < m->n_outputs; i++) {
		if (!m->outputs[i].name || !manifest_output_name_valid(m->outputs[i].name))
			return -EINVAL;
		if (m->outputs[i].mode != 0644 && m->outputs[i].mode != 0755)
			return -EINVAL;
	}
	if (m->worker && strlen(m->worker) > 1024)
		return -EINVAL;
	const struct manifest_output **v = sorted_outputs(m);
	if (m->n_outputs && !v)
		return -ENOMEM;
	int ret = 0;
	for (size_t i = 1; i < m->n_outputs; i++)
		if (strcmp(v[i - 1]->name, v[i]->name) == 0)
			ret = -EINVAL;
	free(v);
	return ret;
}

static json_t *hex_string(const unsigned char *bytes, size_t n)
{
	char hex[2 * SIG_SIZE + 1];
	hex_encode(bytes, n, hex);
	return json_string(hex);
}

/* A JSON string of exactly 2 * N hex digits into OUT; -EBADMSG for anything else. */
static int hex_field_decode(const char *hex, unsigned char *out, size_t n)
{
	if (!hex || !hex_valid(hex, n) || hex_decode(hex, out, n) < 0)
		return -EBADMSG;
	return 0;
}

static json_t *blob_ref_json(const unsigned char sha[32], uint64_t size)
{
	return json_pack("{s:I, s:o}", "size", (json_int_t)size, "sha256", hex_string(sha, 32));
}

/* The unsigned manifest object (new reference) or NULL on ENOMEM. */
static json_t *manifest_to_json(const struct manifest *m)
{
	const struct manifest_output **v = sorted_outputs(m);
	json_t *outputs = json_array(), *obj = NULL;
	if (!outputs || (m->n_outputs && !v))
		goto out;
	for (size_t i = 0; i < m->n_outputs; i++) {
		json_t *o = json_pack("{s:s, s:i, s:I, s:o}", "name", v[i]->name, "mode",
		                      (int)v[i]->mode, "size", (json_int_t)v[i]->size, "sha256",
		                      hex_string(v[i]->sha256, 32));
		if (!o || json_array_append_new(outputs, o) < 0)
			goto out;
	}
	obj = json_pack("{s:i, s:s, s:s, s:O, s:o, s:o, s:i, s:I, s:s, s:I}", "version",
	                MANIFEST_VERSION, "key", m->key, "toolchain", m->toolchain, "outputs", outputs,
	                "stdout", blob_ref_json(m->stdout_sha256, m->stdout_size), "stderr",
	                blob_ref_json(m->stderr_sha256, m->stderr_size), "exit_status",
	                m->exit_status, "duration_ms", (json_int_t)m->duration_ms, "worker",
	                m->worker ? m->worker : "", "created", (json_int_t)m->created);
out:
	json_decref(outputs);
	free(v);
	return obj;
}

int signed_object_sign(const char *field, json_t *obj, EVP_PKEY *key, char **text, size_t *len)
{
	int ret = -ENOMEM;
	json_t *whole = NULL;
	char *canonical = NULL, *dumped = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sig[SIG_SIZE], pub[PUBKEY_SIZE];
	size_t sig_len = sizeof(sig), pub_len = sizeof(pub);
	if (!obj || !ctx)
		goto out;
	canonical = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!canonical)
		goto out;
	ret = -EINVAL;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)canonical, strlen(canonical)) != 1 ||
	    sig_len != SIG_SIZE ||
	    EVP_PKEY_get_raw_public_key(key, pub, &pub_len) != 1 || pub_len != PUBKEY_SIZE)
		goto out;
	ret = -ENOMEM;
	whole = json_pack("{s:O, s:{s:s, s:o, s:o}}", field, obj, "signature", "algorithm",
	                  "ed25519", "public_key", hex_string(pub, PUBKEY_SIZE), "value",
	                  hex_string(sig, SIG_SIZE));
	if (!whole)
		goto out;
	dumped = json_dumps(whole, JSON_COMPACT | JSON_SORT_KEYS);
	if (!dumped)
		goto out;
	size_t n = strlen(dumped);
	char *t = realloc(dumped, n + 2);
	if (!t)
		goto out;
	dumped = NULL;
	t[n] = '\n';
	t[n + 1] = 0;
	*text = t;
	*len = n + 1;
	ret = 0;
out:
	free(dumped);
	free(canonical);
	json_decref(whole);
	EVP_MD_CTX_free(ctx);
	return ret;
}

int manifest_sign(const struct manifest *m, EVP_PKEY *key, char **text, size_t *len)
{
	int ret = manifest_validate(m);
	if (ret < 0)
		return ret;
	json_t *obj = manifest_to_json(m);
	ret = obj ? signed_object_sign("manifest", obj, key, text, len) : -ENOMEM;
	json_decref(obj);
	return ret;
}

static int get_hex32(json_t *obj, const char *field, unsigned char out[32])
{
	return hex_field_decode(json_string_value(json_object_get(obj, field)), out, 32);
}

static int get_u64(json_t *obj, const char *field, uint64_t *out)
{
	json_t *v = json_object_get(obj, field);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_key_hex(json_t *obj, const char *field, char out[65])
{
	const char *s = json_string_value(json_object_get(obj, field));
	if (!s || !digest_hex_valid(s))
		return -EBADMSG;
	memcpy(out, s, 65);
	return 0;
}

static int manifest_from_json(json_t *obj, struct manifest *m)
{
	json_t *outputs = json_object_get(obj, "outputs");
	json_t *out_ref = json_object_get(obj, "stdout"), *err_ref = json_object_get(obj, "stderr");
	json_t *version = json_object_get(obj, "version"), *status = json_object_get(obj, "exit_status");
	json_t *created = json_object_get(obj, "created");
	const char *worker = json_string_value(json_object_get(obj, "worker"));
	if (!json_is_integer(version) || json_integer_value(version) != MANIFEST_VERSION ||
	    !json_is_array(outputs) || json_array_size(outputs) > MANIFEST_MAX_OUTPUTS ||
	    !json_is_object(out_ref) || !json_is_object(err_ref) || !json_is_integer(status) ||
	    json_integer_value(status) < -1024 || json_integer_value(status) > 1024 ||
	    !json_is_integer(created) || !worker)
		return -EBADMSG;
	if (get_key_hex(obj, "key", m->key) < 0 || get_key_hex(obj, "toolchain", m->toolchain) < 0 ||
	    get_hex32(out_ref, "sha256", m->stdout_sha256) < 0 ||
	    get_u64(out_ref, "size", &m->stdout_size) < 0 ||
	    get_hex32(err_ref, "sha256", m->stderr_sha256) < 0 ||
	    get_u64(err_ref, "size", &m->stderr_size) < 0 ||
	    get_u64(obj, "duration_ms", &m->duration_ms) < 0)
		return -EBADMSG;
	m->exit_status = (int)json_integer_value(status);
	m->created = json_integer_value(created);
	m->worker = strdup(worker);
	if (!m->worker)
		return -ENOMEM;
	size_t n = json_array_size(outputs);
	if (n) {
		m->outputs = calloc(n, sizeof(*m->outputs));
		if (!m->outputs)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(outputs, i);
		const char *name = json_string_value(json_object_get(o, "name"));
		json_t *mode = json_object_get(o, "mode");
		struct manifest_output *out = &m->outputs[i];
		/* Range-checked before the cast: 2^32 + 0644 must not read as 0644. */
		if (!name || !json_is_integer(mode) || json_integer_value(mode) < 0
		    || json_integer_value(mode) > 07777)
			return -EBADMSG;
		out->name = strdup(name);
		if (!out->name)
			return -ENOMEM;
		m->n_outputs = i + 1;
		out->mode = (unsigned)json_integer_value(mode);
		if (get_u64(o, "size", &out->size) < 0 || get_hex32(o, "sha256", out->sha256) < 0)
			return -EBADMSG;
	}
	/* Names, modes and uniqueness as for publishing: a reader trusts nothing it parsed. */
	int ret = manifest_validate(m);
	return ret == -EINVAL ? -EBADMSG : ret;
}

int signed_object_verify(const char *text, size_t len, size_t max, const char *field,
                         const unsigned char *public_key, json_t **object)
{
	int ret = -EBADMSG;
	json_error_t jerr;
	json_t *whole = NULL;
	char *canonical = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned char sig[SIG_SIZE], pub[PUBKEY_SIZE];

	*object = NULL;
	if (len > max)
		goto out;
	whole = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *obj = json_object_get(whole, field), *sigobj = json_object_get(whole, "signature");
	if (!json_is_object(obj) || !json_is_object(sigobj))
		goto out;
	const char *alg = json_string_value(json_object_get(sigobj, "algorithm"));
	if (!alg || strcmp(alg, "ed25519") != 0 ||
	    hex_field_decode(json_string_value(json_object_get(sigobj, "value")), sig, SIG_SIZE) < 0 ||
	    hex_field_decode(json_string_value(json_object_get(sigobj, "public_key")), pub,
			     PUBKEY_SIZE) < 0)
		goto out;
	if (public_key && memcmp(public_key, pub, PUBKEY_SIZE) != 0)
		goto out;
	ret = -ENOMEM;
	canonical = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	ctx = EVP_MD_CTX_new();
	if (!canonical || !ctx)
		goto out;
	ret = -EBADMSG;
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, PUBKEY_SIZE);
	if (!pkey || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
	    EVP_DigestVerify(ctx, sig, SIG_SIZE, (const unsigned char *)canonical,
	                     strlen(canonical)) != 1)
		goto out;
	*object = json_incref(obj);
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	free(canonical);
	json_decref(whole);
	return ret;
}

int manifest_verify(const char *text, size_t len, const unsigned char *public_key,
                    struct manifest *m)
{
	json_t *obj = NULL;
	int ret;

	manifest_init(m);
	ret = signed_object_verify(text, len, MANIFEST_MAX_TEXT, "manifest", public_key, &obj);
	if (ret == 0)
		ret = manifest_from_json(obj, m);
	if (ret < 0)
		manifest_release(m);
	json_decref(obj);
	return ret;
}

int manifest_verify_trusted(const char *text, size_t len, const struct manifest_trust *trust,
                            struct manifest *m)
{
	int ret = -EBADMSG;
	manifest_init(m);
	for (size_t i = 0; i < trust->n_keys && ret == -EBADMSG; i++)
		ret = manifest_verify(text, len, trust->keys[i], m);
	return ret;
}

int manifest_trust_parse(struct manifest_trust *trust, const char *text, size_t len,
                         unsigned *bad_line)
{
	const char *p = text, *end = text + len;
	unsigned line_no = 0;

	trust->n_keys = 0;
	*bad_line = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *hash = memchr(p, '#', (size_t)(line_end - p));
		const char *stop = hash ? hash : line_end;
		line_no++;
		while (p < stop && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\r'))
			stop--;
		if (stop > p) {
			if (stop - p != 64 || trust->n_keys == MANIFEST_TRUST_MAX_KEYS ||
			    hex_decode(p, trust->keys[trust->n_keys], 32) < 0) {
				trust->n_keys = 0;
				*bad_line = line_no;
				return -EINVAL;
			}
			trust->n_keys++;
		}
		p = eol ? eol + 1 : end;
	}
	return trust->n_keys ? 0 : -EINVAL;
}

int manifest_trust_load(struct manifest_trust *trust, const char *path, unsigned *bad_line)
{
	char *text = NULL;
	size_t len = 0;
	int ret = io_read_file_at(AT_FDCWD, path, 0, MANIFEST_TRUST_MAX_TEXT, &text, &len);

	trust->n_keys = 0;
	*bad_line = 0;
	if (ret == 0)
		ret = manifest_trust_parse(trust, text, len, bad_line);
	free(text);
	return ret;
}

int manifest_parse(const char *text, size_t len, struct manifest *m)
{
	return manifest_verify(text, len, NULL, m);
}

long manifest_find_output(const struct manifest *m, const char *name)
{
	for (size_t i = 0; i < m->n_outputs; i++)
		if (strcmp(m->outputs[i].name, name) == 0)
			return (long)i;
	return -1;
}

int manifest_same_result(const struct manifest *a, const struct manifest *b)
{
	if (a->n_outputs != b->n_outputs || a->exit_status != b->exit_status ||
	    a->stdout_size != b->stdout_size || a->stderr_size != b->stderr_size ||
	    memcmp(a->stdout_sha256, b->stdout_sha256, 32) != 0 ||
	    memcmp(a->stderr_sha256, b->stderr_sha256, 32) != 0)
		return 0;
	for (size_t i = 0; i < a->n_outputs; i++) {
		long j = manifest_find_output(b, a->outputs[i].name);
		if (j < 0)
			return 0;
		const struct manifest_output *x = &a->outputs[i], *y = &b->outputs[j];
		if (x->mode != y->mode || x->size != y->size || memcmp(x->sha256, y->sha256, 32) != 0)
			return 0;
	}
	return 1;
}
