/* Publishing a job's pre-key list; see direct_publish.h. */
#include "config.h"

#include "daemon/direct_publish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/roots.h"
#include "hash/depinfo.h"
#include "hash/digest.h"
#include "hash/prekey.h"

/* The dep-info output of M (the one output named *.d), read whole from STORE: *TEXT (malloc'd)
 * of *LEN bytes. -ENOENT when M has none. */
static int read_dep_info(struct store *store, const struct manifest *m, char **text, size_t *len)
{
	const struct manifest_output *o = NULL;
	struct stat st;
	size_t got = 0;
	int fd, ret = 0;

	*text = NULL;
	for (size_t i = 0; i < m->n_outputs; i++) {
		size_t n = strlen(m->outputs[i].name);
		if (n > 2 && strcmp(m->outputs[i].name + n - 2, ".d") == 0)
			o = &m->outputs[i];
	}
	if (!o)
		return -ENOENT;
	if (o->size > DEPINFO_TEXT_MAX)
		return -E2BIG;
	fd = store_open_blob(store, o->sha256);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != o->size) {
		ret = -EBADMSG;
		goto out;
	}
	*text = malloc(o->size + 1);
	if (!*text) {
		ret = -ENOMEM;
		goto out;
	}
	while (got < o->size) {
		ssize_t n = pread(fd, *text + got, o->size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	if (ret < 0) {
		free(*text);
		*text = NULL;
	}
	return ret;
}

int direct_publish(struct store *store, const struct job *job, const struct manifest *m)
{
	unsigned char prekey[DIGEST_SIZE];
	char hex[DIGEST_HEX_SIZE], *text = NULL, **unset = NULL;
	struct depinfo d = { 0 };
	size_t len = 0, n_unset = 0;
	json_t *list = NULL;
	int ret;

	if (job->argc == 0 || strcmp(job->argv[0], ROOT_RUSTC) != 0)
		return 1;
	ret = read_dep_info(store, m, &text, &len);
	if (ret == -ENOENT)
		return 1;
	if (ret == 0)
		ret = depinfo_parse(text, len, &d);
	free(text);
	if (ret < 0)
		return ret;
	unset = calloc(d.n_env ? d.n_env : 1, sizeof(*unset));
	ret = -ENOMEM;
	if (!unset)
		goto out;
	for (size_t i = 0; i < d.n_env; i++)
		if (!d.env[i].value)
			unset[n_unset++] = d.env[i].name;
	list = prekey_list_make(job, unset, n_unset);
	if (!list)
		goto out;
	ret = job_prekey(job, prekey);
	if (ret < 0)
		goto out;
	digest_to_hex(prekey, hex);
	ret = store_add_prekey_list(store, hex, list);
	if (ret == 2)
		ret = 0;
out:
	json_decref(list);
	free(unset);
	depinfo_release(&d);
	return ret;
}
