/* The hex codec: bytes to lowercase hex text and back. The text form is the one every name
 * in the store and on the wire uses (digests, keys, signatures), so it is lowercase only: an
 * upper-case digit is refused, never folded, and two spellings of one value cannot exist. */
#ifndef CACHEPOT_BASE_HEX_H
#define CACHEPOT_BASE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write the 2 * N lowercase hex digits of the N bytes at BYTES into HEX, then a NUL: HEX holds
 * 2 * N + 1 bytes. */
void hex_encode(const uint8_t *bytes, size_t n, char *hex);

/* Decode exactly 2 * N lowercase hex digits at HEX into the N bytes at OUT. HEX need not end
 * after them; reading stops at the first character that is not a digit, so a shorter
 * NUL-terminated string is never read past its NUL. Returns 0, or -EINVAL (OUT then holds
 * garbage). */
int hex_decode(const char *hex, uint8_t *out, size_t n) __attribute__((warn_unused_result));

/* True when S is exactly 2 * N lowercase hex digits followed by NUL. */
int hex_valid(const char *s, size_t n);

#endif
