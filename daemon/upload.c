/* Uploads in parts; see upload.h. */
#include "config.h"

#include "daemon/upload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "fs/store.h"

/* A decimal number of at most 19 digits (below 10^19 < 2^64), no sign, no leading zero but "0". */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 19 || (len > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

static int token_valid(const char *s, size_t len)
{
	if (len != UPLOAD_TOKEN_SIZE - 1)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int upload_part_params_parse(const char *query, struct upload_part_params *p)
{
	enum { HAVE_TOKEN = 1, HAVE_OFFSET = 2, HAVE_TOTAL = 4 };
	unsigned have = 0;
	const char *s = query;

	if (!s || !*s)
		return 0;
	memset(p, 0, sizeof(*p));
	/* The three parameters, each once, in any order; nothing else. Their values are digits
	 * and hex, so no percent-decoding is needed and an encoded one is refused. */
	while (*s) {
		size_t len = strcspn(s, "&"), nlen;
		const char *eq = memchr(s, '=', len);
		const char *v;
		unsigned bit;

		if (!eq)
			return -EINVAL;
		nlen = (size_t)(eq - s);
		v = eq + 1;
		if (nlen == 6 && memcmp(s, "upload", 6) == 0) {
			bit = HAVE_TOKEN;
			if (!token_valid(v, len - nlen - 1))
				return -EINVAL;
			memcpy(p->token, v, UPLOAD_TOKEN_SIZE - 1);
			p->token[UPLOAD_TOKEN_SIZE - 1] = '\0';
		} else if (nlen == 6 && memcmp(s, "offset", 6) == 0) {
			bit = HAVE_OFFSET;
			if (parse_u64(v, len - nlen - 1, &p->offset) < 0)
				return -EINVAL;
		} else if (nlen == 5 && memcmp(s, "total", 5) == 0) {
			bit = HAVE_TOTAL;
			if (parse_u64(v, len - nlen - 1, &p->total) < 0)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
		if (have & bit)
			return -EINVAL;
		have |= bit;
		s += len;
		if (*s == '&' && !*++s)
			return -EINVAL;   /* a trailing '&' */
	}
	if (have != (HAVE_TOKEN | HAVE_OFFSET | HAVE_TOTAL) || p->total == 0 || p->offset >= p->total)
		return -EINVAL;
	return 1;
}

struct upload *upload_find(struct upload_table *t, enum upload_kind kind, const char *name,
			   const char *token)
{
	for (struct upload *u = t->head; u; u = u->next)
		if (u->kind == kind && strcmp(u->name, name) == 0 && strcmp(u->token, token) == 0)
			return u;
	return NULL;
}

int upload_start(struct upload_table *t, enum upload_kind kind, const char *name,
		 const char *token, uint64_t total, struct upload **out)
{
	struct upload *u;

	if (t && t->count >= UPLOADS_MAX)
		return -EAGAIN;
	if (strlen(name) != DIGEST_HEX_SIZE - 1
	    || strlen(token) != (t ? UPLOAD_TOKEN_SIZE - 1 : 0))
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->kind = kind;
	memcpy(u->name, name, DIGEST_HEX_SIZE);
	memcpy(u->token, token, strlen(token) + 1);
	u->total = total;
	u->fd = -1;
	u->last_us = monotonic_us();
	if (t) {
		u->next = t->head;
		t->head = u;
		t->count++;
	}
	*out = u;
	return 0;
}

static void upload_free(struct upload *u)
{
	if (u->blob)
		store_blob_abort(u->blob);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

void upload_drop(struct upload_table *t, struct upload *u)
{
	if (!t) {
		upload_free(u);
		return;
	}
	for (struct upload **p = &t->head; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			t->count--;
			upload_free(u);
			return;
		}
}

unsigned upload_sweep(struct upload_table *t, uint64_t now_us, uint64_t idle_us)
{
	unsigned n = 0;

	for (struct upload **p = &t->head; *p;) {
		struct upload *u = *p;
		if (!u->busy && now_us - u->last_us >= idle_us) {
			*p = u->next;
			t->count--;
			upload_free(u);
			n++;
		} else {
			p = &u->next;
		}
	}
	return n;
}

void upload_table_clear(struct upload_table *t)
{
	while (t->head) {
		struct upload *u = t->head;
		t->head = u->next;
		upload_free(u);
	}
	t->count = 0;
}
