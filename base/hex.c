/* The hex codec; see hex.h. */
#include "config.h"

#include "base/hex.h"

#include <errno.h>
#include <string.h>

void hex_encode(const uint8_t *bytes, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	hex[2 * n] = '\0';
}

static int hex_digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit_value(hex[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int hex_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++)
		if (hex_digit_value(s[i]) < 0)
			return 0;
	return s[2 * n] == '\0';
}
