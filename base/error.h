/* The one error formatter: a helper that fails writes a message for its caller into a buffer
 * the caller owns and returns its -errno, in one statement:
 *
 *	return error_format(err, errlen, -EINVAL, "argv[%zu]: not a string", i);
 *
 * The message is for a person (a log line, an HTTP error body); the return value is what code
 * acts on. */
#ifndef CACHEPOT_BASE_ERROR_H
#define CACHEPOT_BASE_ERROR_H

#include <stddef.h>

/* Format FMT into ERR (ERRLEN bytes, always NUL-terminated, truncated when longer; nothing is
 * written when ERR is NULL or ERRLEN is 0) and return RET unchanged. */
int error_format(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
