/* The wrapper's configuration; see config.h. */
#include "config.h"

#include "client/settings.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void client_config_release(struct client_config *c)
{
	free(c->mount);
	free(c->socket);
	free(c->log);
	free(c->cache_dir);
	free(c->server);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->cacert);
	free(c->trust);
	memset(c, 0, sizeof(*c));
}

static int set_string(char **slot, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* Longest server URL taken: the request paths are appended to it in fixed buffers. */
#define SERVER_URL_MAX 200

/* An empty VALUE unsets *SLOT. */
static int set_optional_string(char **slot, const char *value)
{
	if (!value[0]) {
		free(*slot);
		*slot = NULL;
		return 0;
	}
	return set_string(slot, value);
}

/* "http://HOST[:PORT]" or "https://HOST[:PORT]", kept without a trailing '/'. A path, a query,
 * credentials or a space are refused: the request paths are appended as they are. */
static int set_server(char **slot, const char *value)
{
	size_t len = strlen(value);
	const char *host;
	char *copy;

	if (!len)
		return set_optional_string(slot, value);
	if (strncmp(value, "https://", 8) == 0)
		host = value + 8;
	else if (strncmp(value, "http://", 7) == 0)
		host = value + 7;
	else
		return -EINVAL;
	while (len > (size_t)(host - value) && value[len - 1] == '/')
		len--;
	if (len == (size_t)(host - value) || len > SERVER_URL_MAX)
		return -EINVAL;
	for (const char *p = host; p < value + len; p++)
		if (*p == '/' || *p == '?' || *p == '#' || *p == '@' || *p <= ' ' || *p == 0x7f)
			return -EINVAL;
	copy = strndup(value, len);
	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* A file the submitting helper reads: absolute, since its working directory is wherever cargo
 * ran rustc. */
static int set_file(char **slot, const char *value)
{
	if (value[0] && value[0] != '/')
		return -EINVAL;
	return set_optional_string(slot, value);
}

static int set_option(struct client_config *c, const char *name, const char *value)
{
	if (strcmp(name, "mount") == 0)
		return set_string(&c->mount, value);
	if (strcmp(name, "socket") == 0)
		return set_string(&c->socket, value);
	if (strcmp(name, "log") == 0)
		return value[0] ? set_string(&c->log, value) : 0;
	if (strcmp(name, "cache_dir") == 0)
		return value[0] == '/' ? set_string(&c->cache_dir, value) : -EINVAL;
	if (strcmp(name, "server") == 0)
		return set_server(&c->server, value);
	if (strcmp(name, "tls_cert") == 0)
		return set_file(&c->tls_cert, value);
	if (strcmp(name, "tls_key") == 0)
		return set_file(&c->tls_key, value);
	if (strcmp(name, "cacert") == 0)
		return set_file(&c->cacert, value);
	if (strcmp(name, "trust") == 0)
		return set_file(&c->trust, value);
	if (strcmp(name, "disable") == 0) {
		c->disable = strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0;
		return 0;
	}
	if (strcmp(name, "direct") == 0) {
		c->direct = !(strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0);
		return 0;
	}
	if (strcmp(name, "verify") == 0) {
		if (strcmp(value, "mount") != 0 && strcmp(value, "always") != 0)
			return -EINVAL;
		c->verify_always = strcmp(value, "always") == 0;
		return 0;
	}
	if (strcmp(name, "timeout") == 0) {
		char *end;
		unsigned long v = strtoul(value, &end, 10);
		if (*end || v == 0 || v > 86400)
			return -EINVAL;
		c->timeout = (unsigned)v;
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *end;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int load_file(struct client_config *c, const char *path, int must_exist)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	int ret = 0, lineno = 0;

	if (!f)
		return (errno == ENOENT && !must_exist) ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *eq, *name, *value;
		lineno++;
		line[strcspn(line, "#")] = '\0';
		name = trim(line);
		if (!*name)
			continue;
		eq = strchr(name, '=');
		if (!eq) {
			fprintf(stderr, "cachepot: %s:%d: expected name = value\n", path, lineno);
			ret = -EINVAL;
			continue;
		}
		*eq = '\0';
		value = trim(eq + 1);
		name = trim(name);
		if (set_option(c, name, value) < 0) {
			fprintf(stderr, "cachepot: %s:%d: bad setting %s\n", path, lineno, name);
			ret = -EINVAL;
		}
	}
	fclose(f);
	return ret;
}

/* The home directory of the effective uid in the passwd database, kept in BUF; NULL when it has
 * no entry or the entry's home is not absolute. Never a shared directory such as /tmp in its
 * place: whoever made a directory there first would own the cache. */
static const char *passwd_home(char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	if (getpwuid_r(geteuid(), &pw, buf, len, &found) != 0 || !found || !pw.pw_dir
	    || pw.pw_dir[0] != '/')
		return NULL;
	return pw.pw_dir;
}

int client_config_load(struct client_config *c)
{
	static const struct { const char *var, *name; } vars[] = {
		{ "CACHEPOT_MOUNT", "mount" }, { "CACHEPOT_SOCKET", "socket" },
		{ "CACHEPOT_DISABLE", "disable" }, { "CACHEPOT_LOG", "log" },
		{ "CACHEPOT_CACHE_DIR", "cache_dir" }, { "CACHEPOT_TIMEOUT", "timeout" },
		{ "CACHEPOT_DIRECT", "direct" }, { "CACHEPOT_VERIFY", "verify" }, { "CACHEPOT_SERVER", "server" },
		{ "CACHEPOT_TLS_CERT", "tls_cert" }, { "CACHEPOT_TLS_KEY", "tls_key" },
		{ "CACHEPOT_CACERT", "cacert" }, { "CACHEPOT_TRUST", "trust" },
	};
	const char *file = getenv("CACHEPOT_CONFIG");
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char pw_buf[4096];
	int ret = 0, r;

	memset(c, 0, sizeof(*c));
	c->timeout = 900;
	c->direct = 1;
	if (set_string(&c->mount, CACHEPOT_DEFAULT_MOUNT) < 0 || set_string(&c->socket, CACHEPOT_DEFAULT_SOCKET) < 0)
		return -ENOMEM;
	if (xdg && xdg[0] == '/')
		r = asprintf(&c->cache_dir, "%s/cachepot", xdg);
	else if ((home && home[0] == '/') || (home = passwd_home(pw_buf, sizeof(pw_buf))))
		r = asprintf(&c->cache_dir, "%s/.cache/cachepot", home);
	else
		r = 0; /* no cache directory (see cache_dir.h) */
	if (r < 0) {
		c->cache_dir = NULL;
		return -ENOMEM;
	}
	ret = load_file(c, file ? file : CACHEPOT_DEFAULT_CONFIG, file != NULL);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i].var);
		if (v && (r = set_option(c, vars[i].name, v)) < 0) {
			fprintf(stderr, "cachepot: bad %s=%s\n", vars[i].var, v);
			ret = r;
		}
	}
	return ret;
}
