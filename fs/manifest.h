/* Manifests: what one compile produced, signed by the store that published it.
 *
 * A manifest records the outputs of a job (name, mode, size, SHA-256 of each), its stdout and
 * stderr (as blobs), exit status, toolchain, timing and worker. It is the value of an action key in
 * the store's index and the file ac/<key>/.manifest of the mount.
 *
 * Signed text (format v1). The stored text is one JSON object followed by a newline:
 *
 *   {"manifest":{"version":1,"key":"<hex>","toolchain":"<hex>",
 *                "outputs":[{"name":"libfoo.rlib","mode":420,"size":123,"sha256":"<hex>"},...],
 *                "stdout":{"size":0,"sha256":"<hex>"},"stderr":{"size":0,"sha256":"<hex>"},
 *                "exit_status":0,"duration_ms":12,"worker":"host","created":1700000000},
 *    "signature":{"algorithm":"ed25519","public_key":"<hex of 32 bytes>","value":"<hex of 64>"}}
 *
 * The signature is Ed25519 (OpenSSL EVP) over the bytes of json_dumps(manifest object,
 * JSON_COMPACT | JSON_SORT_KEYS): jansson's sorted compact form is the canonical serialisation,
 * so a reader re-serialises the object it parsed and checks the signature over that. Outputs are
 * written sorted by name. Output names are single path components: no '/', no NUL, not "." or
 * "..", never ".manifest" (the mount shows the manifest under that name), at most 255 bytes.
 * Modes are 0644 or 0755 (the mount shows them without write bits).
 *
 * Every function returns 0 or a negative errno; the signature or shape of a text being wrong is
 * -EBADMSG.
 */
#ifndef CACHEPOT_FS_MANIFEST_H
#define CACHEPOT_FS_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#define MANIFEST_VERSION 1
#define MANIFEST_MAX_OUTPUTS 4096      /* bounded before anything is allocated */
#define MANIFEST_MAX_NAME 255
#define MANIFEST_MAX_TEXT (16u << 20)  /* the largest signed text a reader accepts */
#define MANIFEST_NAME ".manifest"      /* the manifest's own name inside ac/<key>/ */

struct manifest_output {
	char *name;            /* owned */
	unsigned mode;         /* 0644 or 0755 */
	uint64_t size;
	unsigned char sha256[32];
};

struct manifest {
	char key[65];          /* action key, 64 lowercase hex + NUL */
	char toolchain[65];    /* toolchain id, 64 lowercase hex + NUL */
	struct manifest_output *outputs; size_t n_outputs; /* owned */
	unsigned char stdout_sha256[32]; uint64_t stdout_size;   /* stdout and stderr are blobs */
	unsigned char stderr_sha256[32]; uint64_t stderr_size;
	int exit_status; uint64_t duration_ms;
	char *worker;          /* owned, may be NULL (written as "") */
	int64_t created;       /* unix seconds */
};

/* Zero M so that manifest_release is safe on it. */
void manifest_init(struct manifest *m);
/* Free what M owns (output names, outputs, worker) and zero it. M itself is not freed. */
void manifest_release(struct manifest *m);

/* Check that M is publishable: hex fields valid, output names valid and unique, modes allowed,
 * counts bounded. 0 or -EINVAL. */
int manifest_validate(const struct manifest *m) __attribute__((warn_unused_result));

/* Sign M with the Ed25519 KEY and return the signed text (see above) in *TEXT (malloc'd,
 * NUL-terminated, caller frees) and its length without the NUL in *LEN. */
int manifest_sign(const struct manifest *m, EVP_PKEY *key, char **text, size_t *len)
    __attribute__((warn_unused_result));

/* Parse a signed text and check its signature against PUBLIC_KEY (32 raw bytes); when
 * PUBLIC_KEY is NULL, against the public key the text carries (integrity, not provenance: use the
 * store's key, e.g. through store_parse_manifest, when provenance matters). Fills M (which the
 * caller releases; on error M is left released). 0 / -EBADMSG / -ENOMEM. */
int manifest_verify(const char *text, size_t len, const unsigned char *public_key,
                    struct manifest *m) __attribute__((warn_unused_result));

/* The public keys a reader pins (provenance): a trust file lists them, one 64-hex Ed25519
 * public key a line; '#' starts a comment, blank lines and surrounding blanks are fine. What
 * `cachepotd --print-public-key` prints, and a store's key/ed25519.pub, are such files. */
#define MANIFEST_TRUST_MAX_KEYS 64
#define MANIFEST_TRUST_MAX_TEXT (64u << 10)

struct manifest_trust {
	unsigned char keys[MANIFEST_TRUST_MAX_KEYS][32];
	size_t n_keys;
};

/* Parse the trust file text TEXT (LEN bytes) into TRUST (emptied first). 0, or -EINVAL with
 * *BAD_LINE the first line (from 1) that is not a key, or more keys than fit; *BAD_LINE is 0
 * when the text names no key at all. */
int manifest_trust_parse(struct manifest_trust *trust, const char *text, size_t len,
                         unsigned *bad_line) __attribute__((warn_unused_result));

/* Read the trust file PATH (at most MANIFEST_TRUST_MAX_TEXT bytes) into TRUST: -errno of the
 * read, or as manifest_trust_parse. */
int manifest_trust_load(struct manifest_trust *trust, const char *path, unsigned *bad_line)
    __attribute__((warn_unused_result));

/* manifest_verify against each key of TRUST in turn: 0 when one of them signed TEXT, -EBADMSG
 * when none did (an empty TRUST included), -ENOMEM. */
int manifest_verify_trusted(const char *text, size_t len, const struct manifest_trust *trust,
                            struct manifest *m) __attribute__((warn_unused_result));

/* Signed objects: the envelope above, {"<FIELD>":OBJECT,"signature":{...}} and a newline, for
 * other kinds of signed text too (fs/prekey_list.h): FIELD names the kind, so a signed object
 * of one kind is never read as another. signed_object_sign signs OBJECT (borrowed) with KEY
 * into *TEXT (malloc'd, NUL-terminated) of *LEN bytes. signed_object_verify parses TEXT (at most
 * MAX bytes), checks the signature against PUBLIC_KEY (32 raw bytes; NULL: the key the text
 * carries) and gives the signed object in *OBJECT (a new reference): 0, -EBADMSG, -ENOMEM. */
int signed_object_sign(const char *field, json_t *object, EVP_PKEY *key, char **text, size_t *len)
    __attribute__((warn_unused_result));
int signed_object_verify(const char *text, size_t len, size_t max, const char *field,
                         const unsigned char *public_key, json_t **object)
    __attribute__((warn_unused_result));

/* manifest_verify(TEXT, LEN, NULL, M): the text's own key. */
int manifest_parse(const char *text, size_t len, struct manifest *m)
    __attribute__((warn_unused_result));

/* True when A and B describe the same result: the same outputs (name, mode, size, sha256), the
 * same stdout, stderr and exit status. Key, toolchain, timing, worker and creation time are not
 * compared: two workers building the same thing the same way agree. */
int manifest_same_result(const struct manifest *a, const struct manifest *b);

/* Index of the output named NAME in M, or -1. */
long manifest_find_output(const struct manifest *m, const char *name);

/* True when NAME may name an output (see the rules above). */
int manifest_output_name_valid(const char *name);

#endif
