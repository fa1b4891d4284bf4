/* The error formatter; see error.h. */
#include "config.h"

#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

int error_format(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;
	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}
